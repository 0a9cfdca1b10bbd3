#!/usr/bin/env node
// `npm run demo`: the main job end to end on this machine. Makes sure Postgres and Redis are up,
// migrates a demo database, inserts sample orders, runs two replicas of the daemon against a local
// receiver that verifies every signature, shows progress, and prints a summary.
// The demo database (order_callbacks_demo unless DATABASE_URL says otherwise) is dropped at the start
// and at the end: it is the demo's own, never use it for anything else.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Client } = require('pg');
const { Webhook } = require('standardwebhooks');

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/order_callbacks_demo';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const ORDERS = 200;
const FLAKY = new Set([3, 7, 11, 19, 42]); // answer 503 once, then 200
const GONE = 13; // answers 404: fails for good
const BAD_URL = ORDERS + 1; // callback_url 'not a url': a bad row, fails at once
const DEADLINE_MS = 60_000;

const children = [];

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (err) => {
    console.error(`demo failed: ${err.message}`);
    killChildren();
    process.exit(1);
  },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => (killChildren(), process.exit(130)));

async function main() {
  await ensureServices();
  await recreateDatabase();
  run(['migrate']);

  const secret = `whsec_${crypto.randomBytes(24).toString('base64')}`;
  const receiver = await startReceiver(secret);
  await insertOrders(receiver.url);

  const logFile = path.join(os.tmpdir(), `order-callbacks-demo-${process.pid}.log`);
  const log = fs.openSync(logFile, 'a');
  const env = {
    ...process.env,
    DATABASE_URL,
    REDIS_URL,
    QUEUE_NAME: `order-callbacks-demo-${process.pid}`,
    CALLBACK_SECRET: secret,
    CALLBACK_ALLOW_PRIVATE: 'true', // the demo receiver is on 127.0.0.1
    RETRY_BASE_MS: '200',
    RETRY_MAX_MS: '1000',
    POLL_INTERVAL_MS: '200',
    LOG_LEVEL: 'warn',
  };
  console.log(`starting 2 replicas (logs: ${logFile})`);
  for (let i = 0; i < 2; i++) {
    children.push(spawn(process.execPath, [CLI, 'start'], { env, stdio: ['ignore', log, log] }));
  }

  const counts = await showProgress(receiver);
  await stopChildren();
  receiver.server.close();
  const ok = await summarize(counts, receiver);
  await dropDatabase();
  return ok;
}

/** Postgres and Redis reachable at their URLs; else docker compose; else the local binaries; else say what to install. */
async function ensureServices() {
  const services = [
    { name: 'postgres', url: new URL(DATABASE_URL), port: 5432, local: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start' },
    { name: 'redis', url: new URL(REDIS_URL), port: 6379, local: 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no' },
  ];
  for (const service of services) {
    const host = service.url.hostname || '127.0.0.1';
    const port = Number(service.url.port || service.port);
    if (await reachable(host, port)) continue;
    console.log(`${service.name} is not reachable at ${host}:${port}; starting it`);
    if (spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0) {
      sh(`docker compose up -d ${service.name}`);
    } else if (hasCommand(service.name === 'postgres' ? 'pg_ctlcluster' : 'redis-server')) {
      sh(service.local);
    } else {
      throw new Error(
        `${service.name} is not running at ${host}:${port}, and neither Docker nor a local ${service.name} is installed. ` +
          `Install Docker (then: docker compose up -d postgres redis) or ${service.name === 'postgres' ? 'PostgreSQL 15' : 'Redis 7'}, or set ${service.name === 'postgres' ? 'DATABASE_URL' : 'REDIS_URL'}.`,
      );
    }
    const deadline = Date.now() + 30_000;
    while (!(await reachable(host, port))) {
      if (Date.now() > deadline) throw new Error(`${service.name} did not come up at ${host}:${port} within 30 s`);
      await sleep(500);
    }
  }
}

function reachable(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 1000 });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

async function adminClient() {
  const url = new URL(DATABASE_URL);
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  return client;
}

const demoDatabaseName = () => decodeURIComponent(new URL(DATABASE_URL).pathname.slice(1));

async function recreateDatabase() {
  await dropDatabase();
}

async function dropDatabase() {
  const client = await adminClient();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${demoDatabaseName().replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

async function insertOrders(baseUrl) {
  const client = new Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO orders (id, status, callback_url, payload)
       SELECT g, 5, $1 || '/orders/' || g, jsonb_build_object('sku', 'SKU-' || g, 'quantity', 1 + g % 3)
         FROM generate_series(1, $2::int) g`,
      [baseUrl, ORDERS],
    );
    await client.query(`INSERT INTO orders (id, status, callback_url, payload) VALUES ($1, 5, 'not a url', '{}')`, [BAD_URL]);
  } finally {
    await client.end();
  }
  console.log(`inserted ${ORDERS + 1} orders at status 5 (order ${GONE} answers 404, ${[...FLAKY].join(', ')} answer 503 once, ${BAD_URL} has a bad URL)`);
}

/** The partner: verifies each signature with the Standard Webhooks reference library, counts per webhook-id. */
function startReceiver(secret) {
  const webhook = new Webhook(secret);
  const state = { requests: 0, badSignatures: 0, perId: new Map() };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      state.requests += 1;
      const body = Buffer.concat(chunks).toString('utf8');
      try {
        webhook.verify(body, req.headers);
      } catch {
        state.badSignatures += 1;
        res.writeHead(401).end();
        return;
      }
      const id = String(req.headers['webhook-id']);
      const seen = (state.perId.get(id) || 0) + 1;
      state.perId.set(id, seen);
      const orderId = Number(JSON.parse(body).orderId);
      if (orderId === GONE) res.writeHead(404).end('no such order here');
      else if (FLAKY.has(orderId) && seen === 1) res.writeHead(503).end('busy, try later');
      else res.writeHead(200).end('ok');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, state, url: `http://127.0.0.1:${server.address().port}` })),
  );
}

async function countByStatus() {
  const client = new Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT status, count(*)::int AS n FROM orders GROUP BY status');
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  } finally {
    await client.end();
  }
}

async function showProgress(receiver) {
  const started = Date.now();
  for (;;) {
    const counts = await countByStatus();
    const line = `ready ${counts[5] || 0}  delivered ${counts[6] || 0}  failed ${counts[7] || 0}  requests at the receiver ${receiver.state.requests}`;
    console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
    if (!counts[5] || Date.now() - started > DEADLINE_MS) return counts;
    const exited = children.find((c) => c.exitCode !== null);
    if (exited) throw new Error(`a replica exited with code ${exited.exitCode}; see its log`);
    await sleep(1000);
  }
}

async function summarize(counts, receiver) {
  const client = new Client({ connectionString: DATABASE_URL });
  await client.connect();
  const failed = (await client.query('SELECT id, last_error FROM orders WHERE status = 7 ORDER BY id')).rows;
  const retried = (await client.query('SELECT count(*)::int AS n FROM orders WHERE status = 6 AND attempts > 1')).rows[0].n;
  await client.end();
  const duplicates = [...receiver.state.perId.entries()].filter(([id, n]) => n > 1 && !FLAKY.has(Number(id.slice('order-'.length))));

  console.log('\nsummary');
  console.log(`  delivered (6)          ${counts[6] || 0} of ${ORDERS - 1} expected`);
  console.log(`  failed (7)             ${failed.length} of 2 expected`);
  for (const row of failed) console.log(`    order ${row.id}: ${row.last_error}`);
  console.log(`  delivered after retry  ${retried}`);
  console.log(`  duplicate webhook-ids  ${duplicates.length} (expected 0)`);
  console.log(`  bad signatures         ${receiver.state.badSignatures} (expected 0)`);
  const ok =
    (counts[6] || 0) === ORDERS - 1 &&
    failed.map((r) => Number(r.id)).join() === [GONE, BAD_URL].join() &&
    duplicates.length === 0 &&
    receiver.state.badSignatures === 0;
  console.log(ok ? '\nall orders reached the state their endpoint dictates' : '\nSOMETHING IS OFF: see above');
  return ok;
}

/** SIGTERM (graceful), then SIGKILL after a bound. */
async function stopChildren() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  const deadline = Date.now() + 20_000;
  while (children.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < deadline) await sleep(100);
  killChildren();
}

function killChildren() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function run(args) {
  const result = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, DATABASE_URL }, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`order-callbacks ${args.join(' ')} exited with ${result.status}`);
}

function sh(command) {
  const result = spawnSync('sh', ['-c', command], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`${command} failed`);
}

function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
