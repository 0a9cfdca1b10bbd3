// Postgres and Redis for `npm run demo` and `npm test`: each answers at its URL, or is started here
// (docker compose where a Docker engine runs, else the local binaries), or we say what to install.
'use strict';

const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const net = require('node:net');
const path = require('node:path');
const { Client } = require('pg');
const { Redis } = require('ioredis');

const ROOT = path.join(__dirname, '..', '..');
const SERVICE_START_TIMEOUT_MS = 30_000;
const ANSWER_TIMEOUT_MS = 2000; // one check's connect; the next check comes 500 ms later
const RECHECK_MS = 500;

/**
 * Postgres as a service to make sure of. `url` is the database the check connects to and runs a
 * query on; `variable` is what the user sets to point elsewhere.
 */
function postgresService(url, variable) {
  return {
    name: 'postgres',
    ...hostAndPort(url, 5432),
    answers: () => postgresAnswers(url),
    binary: 'pg_ctlcluster',
    startLocal: () => 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start', // the cluster's own port
    install: 'PostgreSQL 15 (Debian: apt-get install postgresql)',
    variable,
  };
}

function redisService(url, variable) {
  return {
    name: 'redis',
    ...hostAndPort(url, 6379),
    answers: () => redisAnswers(url),
    binary: 'redis-server',
    startLocal: (port) => `redis-server --daemonize yes --bind 127.0.0.1 --port ${port} --save "" --appendonly no`,
    install: 'Redis 7 (Debian: apt-get install redis-server)',
    variable,
  };
}

/**
 * Each service answers, or is started here and then answers, or this throws saying why. `who` names
 * the command in the messages ("the demo", "npm test").
 */
async function ensureServices(services, who) {
  const down = [];
  for (const s of services) if (!(await tcpReachable(s.host, s.port))) down.push(s);
  if (down.length > 0) startServices(down, who);

  // A port that accepts connections is not yet a server that answers: Docker's proxy accepts before
  // the container's server listens, and Postgres refuses queries while it starts up.
  for (const s of services) await waitUntilAnswers(s);
}

function startServices(down, who) {
  const names = down.map((s) => s.name);
  const remote = down.find((s) => !isLoopback(s.host));
  if (remote) {
    throw new Error(
      `${remote.name} is not reachable at ${remote.host}:${remote.port}; ${who} starts services only on this machine. Check ${remote.variable}.`,
    );
  }
  console.log(`${names.join(' and ')} not running; starting ${names.length > 1 ? 'them' : 'it'}`);
  if (dockerRuns()) {
    // Compose interpolates the whole file, the daemon's ${CALLBACK_SECRET:?} included, even to start
    // only these two services: give it a throwaway value unless the user has set one.
    const env = { ...process.env, CALLBACK_SECRET: process.env.CALLBACK_SECRET || `whsec_${crypto.randomBytes(24).toString('base64')}` };
    const compose =
      spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0 ? ['docker', 'compose'] : ['docker-compose'];
    runOrThrow(compose[0], [...compose.slice(1), 'up', '-d', ...names], { cwd: ROOT, env });
    return;
  }
  for (const s of down) {
    if (!hasCommand(s.binary)) {
      throw new Error(
        `${s.name} is not running at ${s.host}:${s.port}, and neither Docker nor ${s.binary} is installed here. ` +
          `Install Docker (${who} then runs \`docker compose up -d postgres redis\`) or ${s.install}, or point ${s.variable} at a running one.`,
      );
    }
    runOrThrow('sh', ['-c', s.startLocal(s.port)]);
  }
}

async function waitUntilAnswers(service) {
  const deadline = Date.now() + SERVICE_START_TIMEOUT_MS;
  for (;;) {
    const problem = await service.answers();
    if (!problem) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${service.name} at ${service.host}:${service.port} does not answer after ${SERVICE_START_TIMEOUT_MS / 1000} s: ${problem}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, RECHECK_MS));
  }
}

/** undefined when Postgres runs a query at `url`, else why not. */
async function postgresAnswers(url) {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: ANSWER_TIMEOUT_MS });
  client.on('error', () => {}); // a server going away mid-check must not crash the caller
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return /** @type {Error} */ (err).message;
  } finally {
    await client.end().catch(() => {});
  }
}

/** undefined when Redis answers PING at `url`, else why not. */
async function redisAnswers(url) {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: ANSWER_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {}); // reported through the rejected promise below
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (err) {
    return /** @type {Error} */ (err).message;
  } finally {
    redis.disconnect();
  }
}

function hostAndPort(value, defaultPort) {
  const url = new URL(value);
  return { host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(url.port || defaultPort) };
}

function tcpReachable(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 1000 });
    const done = (ok) => (socket.destroy(), resolve(ok));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

const isLoopback = (host) => host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));
const dockerRuns = () => hasCommand('docker') && spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 15_000 }).status === 0;

function runOrThrow(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.error) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`\`${command} ${args.join(' ')}\` exited with ${result.status ?? result.signal}`);
}

function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

module.exports = { ensureServices, postgresService, redisService, runOrThrow, hasCommand };
