'use strict';
// Child processes of the bench, killed by pid on exit, and their CPU time from /proc.
const { fork, spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const children = new Set();

function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function killAll() {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

/**
 * A sink in its own process; resolves with its port and url, and with `urls`: one per origin when
 * `ports` (a number) asks for several.
 */
function startSink(options = {}) {
  const args = ['never', 'record', 'flaky', 'mixed', 'realistic'].filter((flag) => options[flag]).map((flag) => `--${flag}`);
  if (options.ports) args.push('--ports', String(options.ports));
  const child = track(fork(path.join(__dirname, 'sink.js'), args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  return new Promise((resolve, reject) => {
    const urlOf = (port) => `http://127.0.0.1:${port}/callback`;
    child.once('message', (msg) => resolve({ child, port: msg.port, url: urlOf(msg.port), urls: msg.ports.map(urlOf) }));
    child.once('exit', (code) => reject(new Error(`sink exited with ${code}`)));
  });
}

/** Asks a sink for what it was sent (`'count'` or `'arrivals'`). */
function askSink(sink, what) {
  return new Promise((resolve) => {
    sink.child.once('message', resolve);
    sink.child.send(what);
  });
}

/**
 * Waits until `sink` has seen `requests` requests, then until `delivered()` says all are recorded. The
 * sink's count is one IPC message; counting a big table every 50 ms instead would cost the machine a
 * core on a million rows, charged to the scenario under test and taken from it.
 */
async function waitForDeliveries(sink, requests, delivered, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const waitFor = async (check) => {
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('bench scenario did not finish in time');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  await waitFor(async () => (await askSink(sink, 'count')).requests >= requests);
  await waitFor(delivered);
}

/** Resident memory of a pid in bytes, 0 when gone. */
function rssBytes(pid) {
  try {
    const line = fs
      .readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('VmRSS:'));
    if (line === undefined) return 0;
    return Number(line.split(/\s+/)[1]) * 1024;
  } catch {
    return 0;
  }
}

/**
 * One `start` replica, of this checkout's build or of `cli` (another checkout's dist/cli.js). Its log
 * lines go to BENCH_LOG_DIR/daemon-<pid>.log when that is set.
 */
function startDaemon(env, cli = CLI) {
  const logDir = process.env.BENCH_LOG_DIR;
  const child = track(
    spawn(process.execPath, [cli, 'start'], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', logDir ? 'pipe' : 'ignore', 'inherit'],
    }),
  );
  if (logDir) child.stdout.pipe(fs.createWriteStream(path.join(logDir, `daemon-${child.pid}.log`)));
  return child;
}

async function stop(child, graceMs = 20_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Removes a queue the daemons of a scenario used, so runs leave nothing in Redis. */
async function removeQueue(name) {
  const { Queue } = require('bullmq');
  const { obliterateWithMarker } = require('../dist/queue/redis-reset-detector');
  const url = new URL(process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379');
  const queue = new Queue(name, { connection: { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null } });
  try {
    await obliterateWithMarker(queue);
  } finally {
    await queue.close();
  }
}

/** utime + stime in seconds of a pid, 0 when gone. */
function cpuSeconds(pid) {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks: 100/s on Linux
  } catch {
    return 0;
  }
}

/**
 * Pids of every Postgres and Redis process on the machine (servers, backends, autovacuum): their CPU
 * is part of what an order costs. Matched by process name, not command line, which a backend rewrites.
 */
function serverPids() {
  const pids = (name) => {
    try {
      return execFileSync('pgrep', ['-x', name], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  return { postgres: pids('postgres'), redis: pids('redis-server') };
}

module.exports = { track, startSink, askSink, waitForDeliveries, startDaemon, stop, removeQueue, cpuSeconds, rssBytes, serverPids, CLI };
