#!/usr/bin/env node
// `npm run demo` (= npm run build && node scripts/demo.js): the whole job end to end on this machine.
//
//   1. Makes sure Postgres and Redis answer (starts them with docker compose or the local binaries if not).
//   2. Recreates and migrates the demo database, order_callbacks_demo.
//   3. Runs a local "partner" that verifies every signature with the Standard Webhooks reference library.
//   4. Inserts sample orders at status 5 and runs two replicas of the daemon against them.
//   5. Shows progress, prints a summary, stops the replicas, and removes what it created.
//
// The demo database is the demo's own: it is DROPPED at the start and at the end. Whatever DATABASE_URL
// says, the demo only uses a database whose name ends in _demo (order_callbacks_demo on the same server
// otherwise), so it can never drop real data. Redis: it uses a queue of its own, order-callbacks-demo-<pid>,
// and removes only that queue's keys at the end.
//
// Exit 0 when every order reached the state its endpoint dictates, 1 otherwise.
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { Client } = require('pg');
const { Webhook } = require('standardwebhooks');
// The Redis client the project depends on: removing the demo queue at the end.
const { Redis } = require('ioredis');
// Starting Postgres and Redis when they are down: shared with `npm test`'s set-up.
const { ensureServices, postgresService, redisService, runOrThrow } = require('./lib/services');

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');

const DATABASE_URL = demoDatabaseUrl(process.env.DATABASE_URL);
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const QUEUE_NAME = `order-callbacks-demo-${process.pid}`;
const LOG_FILE = path.join(os.tmpdir(), `order-callbacks-demo-${process.pid}.log`);

// The sample: ORDERS orders that the partner accepts, except for a few that show the other paths.
const ORDERS = 200;
const REPLICAS = 2;
const FLAKY = new Set([3, 7, 11, 19, 42]); // answer 503 on the first try, then 200: retries
const GONE = 13; // answers 404: the partner does not want it, the order fails (7)
const BAD_URL = ORDERS + 1; // callback_url 'not a url': a bad row, fails (7) without any request

const DEADLINE_MS = 60_000; // for all orders to reach 6 or 7
const STOP_TIMEOUT_MS = 20_000; // above the daemon's default SHUTDOWN_GRACE_MS (15 s); then SIGKILL

/**
 * Everything that cleanup() must undo, filled in as the demo goes.
 * @type {{ replicas: import('node:child_process').ChildProcess[], receiver: Receiver | undefined, db: import('pg').Client | undefined, database: boolean }}
 */
const created = { replicas: [], receiver: undefined, db: undefined, database: false };
let interrupted = false; // set by Ctrl-C (or SIGTERM): cleanup is under way

main().then(
  (ok) => finish(ok ? 0 : 1),
  (err) => {
    if (interrupted) return; // the signal handler is already finishing; this is just its fallout
    console.error(`\ndemo failed: ${err.message}`);
    showLogTail();
    return finish(1);
  },
);

// Ctrl-C: the replicas share our terminal and get the SIGINT too; cleanup() still stops them for sure.
// A second Ctrl-C leaves at once, after killing them.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted) {
      killReplicas();
      process.exit(130);
    }
    interrupted = true;
    console.error(`\n${signal}: stopping the replicas and cleaning up (again to quit at once)`);
    void finish(130);
  });
}

async function finish(code) {
  await cleanup();
  process.exit(code);
}

async function main() {
  if (!fs.existsSync(CLI))
    throw new Error(`${path.relative(process.cwd(), CLI)} is missing: run \`npm run build\` first (\`npm run demo\` does)`);
  await ensureServices([postgresService(maintenanceUrl(), 'DATABASE_URL'), redisService(REDIS_URL, 'REDIS_URL')], 'the demo');

  console.log(`demo database: ${redact(DATABASE_URL)} (demo only: dropped now and at the end)`);
  await dropDemoDatabase();
  created.database = true; // from here on, cleanup() drops it again (migrate creates it)
  runCli(['migrate']);

  const secret = `whsec_${crypto.randomBytes(24).toString('base64')}`;
  created.receiver = await startReceiver(secret);
  created.db = await connect(DATABASE_URL);
  await insertOrders(created.db, created.receiver.url);

  console.log(`starting ${REPLICAS} replicas of \`order-callbacks start\`, queue ${QUEUE_NAME} (their logs: ${LOG_FILE})`);
  startReplicas(secret);

  await showProgressUntilDone(created.db, created.receiver.stats);
  await stopReplicas();
  return summarize(created.db, created.receiver.stats);
}

// ---------------------------------------------------------------------------------------------------
// 2. The demo database

/**
 * The user's DATABASE_URL (server, credentials) with a database that is surely the demo's: the name
 * given if it ends in _demo, else order_callbacks_demo. Dropping it can never lose real data.
 */
function demoDatabaseUrl(given) {
  const url = new URL(given || 'postgres://postgres@127.0.0.1:5432/order_callbacks_demo');
  if (!decodeURIComponent(url.pathname.slice(1)).endsWith('_demo')) url.pathname = '/order_callbacks_demo';
  return url.toString();
}

/** The same server's `postgres` database: where a database can be dropped from. */
function maintenanceUrl() {
  const url = new URL(DATABASE_URL);
  url.pathname = '/postgres';
  return url.toString();
}

async function dropDemoDatabase() {
  const name = decodeURIComponent(new URL(DATABASE_URL).pathname.slice(1));
  const client = await connect(maintenanceUrl());
  try {
    // WITH (FORCE): a replica left over from an interrupted run must not keep it alive.
    await client.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

async function insertOrders(db, receiverUrl) {
  // Each order's callback URL names the order, so the receiver knows whom it is answering.
  await db.query(
    `INSERT INTO orders (id, status, callback_url, payload)
     SELECT g, 5, $1 || '/orders/' || g, jsonb_build_object('sku', 'SKU-' || g, 'quantity', 1 + g % 3)
       FROM generate_series(1, $2::int) g`,
    [receiverUrl, ORDERS],
  );
  await db.query(`INSERT INTO orders (id, status, callback_url, payload) VALUES ($1, 5, 'not a url', '{}')`, [BAD_URL]);
  console.log(
    `inserted ${ORDERS + 1} orders at status 5: ${[...FLAKY].join(', ')} answer 503 once; ${GONE} answers 404; ${BAD_URL} has callback_url 'not a url'`,
  );
}

/** The final status each order should reach, given how the receiver answers it. */
const expectedStatus = (orderId) => (orderId === GONE || orderId === BAD_URL ? 7 : 6);

// ---------------------------------------------------------------------------------------------------
// 3. The partner

/** How the partner answers the `attempt`-th request for an order. */
function answerFor(orderId, attempt) {
  if (orderId === GONE) return { status: 404, body: 'no such order here' };
  if (FLAKY.has(orderId) && attempt === 1) return { status: 503, body: 'busy, try later' };
  return { status: 200, body: 'ok' };
}

/**
 * An HTTP server on 127.0.0.1 that verifies every request with `standardwebhooks` (the raw body, as
 * sent) and counts requests and acceptances per webhook-id: the id is the same on every retry of an
 * order, so one id accepted twice would be a duplicate delivery.
 * @typedef {{ requests: number, badSignatures: number, perWebhookId: Map<string, { requests: number, accepted: number }> }} ReceiverStats
 * @typedef {{ server: http.Server, stats: ReceiverStats, url: string }} Receiver
 * @returns {Promise<Receiver>}
 */
function startReceiver(secret) {
  const verifier = new Webhook(secret);
  const stats = { requests: 0, badSignatures: 0, perWebhookId: new Map() };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      stats.requests += 1;
      try {
        verifier.verify(Buffer.concat(chunks).toString('utf8'), /** @type {Record<string, string>} */ (req.headers));
      } catch {
        stats.badSignatures += 1;
        res.writeHead(401).end('bad signature');
        return;
      }
      const id = String(req.headers['webhook-id']);
      const seen = stats.perWebhookId.get(id) || { requests: 0, accepted: 0 };
      seen.requests += 1;
      stats.perWebhookId.set(id, seen);

      const orderId = Number(/^\/orders\/(\d+)$/.exec(req.url || '')?.[1]);
      const answer = answerFor(orderId, seen.requests);
      if (answer.status < 300) seen.accepted += 1;
      res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(answer.body);
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, stats, url: `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (server.address()).port}` }),
    );
  });
}

// ---------------------------------------------------------------------------------------------------
// 4. The replicas

/**
 * The replicas' environment: ours, minus any of the daemon's own variables that happen to be set (a
 * METRICS_PORT would make the second replica fail to listen, a MAX_ATTEMPTS=1 would change the
 * outcome), plus the demo's settings.
 */
function daemonEnv(extra) {
  const env = { ...process.env };
  for (const name of daemonVariableNames()) delete env[name];
  return { ...env, DATABASE_URL, REDIS_URL, QUEUE_NAME, ...extra };
}

/** The daemon's variables, as .env.example lists them, commented out or not. */
function daemonVariableNames() {
  const text = fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8');
  return [...text.matchAll(/^(?:#\s*)?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]);
}

function startReplicas(secret) {
  const env = daemonEnv({
    CALLBACK_SECRET: secret,
    CALLBACK_ALLOW_PRIVATE: 'true', // the receiver is on 127.0.0.1, which the daemon refuses by default
    RETRY_BASE_MS: '200', // retries within a second instead of minutes
    RETRY_MAX_MS: '1000',
    POLL_INTERVAL_MS: '200',
    LOG_LEVEL: 'warn', // the demo prints its own progress; the log file keeps what matters
  });
  // Their output goes to a file: two replicas' JSON lines would bury the progress lines.
  const log = fs.openSync(LOG_FILE, 'a');
  for (let i = 0; i < REPLICAS; i++) {
    created.replicas.push(spawn(process.execPath, [CLI, 'start'], { cwd: ROOT, env, stdio: ['ignore', log, log] }));
  }
  fs.closeSync(log); // the children hold their own copies
}

const running = (child) => child.exitCode === null && child.signalCode === null;

/** SIGTERM (a graceful stop: callbacks in flight finish), then SIGKILL after STOP_TIMEOUT_MS. */
async function stopReplicas() {
  const live = created.replicas.filter(running);
  if (live.length === 0) return;
  for (const child of live) child.kill('SIGTERM');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (live.some(running) && Date.now() < deadline) await sleep(100);
  const stuck = live.filter(running);
  if (stuck.length > 0) console.error(`${stuck.length} replica(s) still running after ${STOP_TIMEOUT_MS / 1000} s: SIGKILL`);
  killReplicas();
  // Wait for the kernel to report them gone, so nothing of theirs touches the database we drop next.
  while (live.some(running)) await sleep(50);
  const all = created.replicas;
  if (all.some((c) => c.exitCode !== 0))
    console.error(`replica exit codes: ${all.map((c) => c.exitCode ?? c.signalCode).join(', ')} (0 expected)`);
}

function killReplicas() {
  for (const child of created.replicas) if (running(child)) child.kill('SIGKILL');
}

// ---------------------------------------------------------------------------------------------------
// 5. Progress and summary

async function countByStatus(db) {
  const { rows } = await db.query('SELECT status, count(*)::int AS n FROM orders GROUP BY status');
  const counts = { ready: 0, delivered: 0, failed: 0, other: 0 };
  for (const { status, n } of rows) counts[{ 5: 'ready', 6: 'delivered', 7: 'failed' }[status] || 'other'] += n;
  return counts;
}

/** One line a second until every order is 6 or 7, or DEADLINE_MS has passed. */
async function showProgressUntilDone(db, receiverStats) {
  const started = Date.now();
  for (;;) {
    const c = await countByStatus(db);
    const seconds = ((Date.now() - started) / 1000).toFixed(0).padStart(3);
    console.log(
      `[${seconds}s] ready ${c.ready}  delivered ${c.delivered}  failed ${c.failed}  other ${c.other}  |  requests at the receiver ${receiverStats.requests}`,
    );
    if (c.ready === 0 && c.other === 0) return;
    if (Date.now() - started > DEADLINE_MS) {
      console.log(`not finished after ${DEADLINE_MS / 1000} s`);
      return;
    }
    // A replica that dies during the demo is a failure of the demo, whatever the counts say later.
    const dead = created.replicas.find((c) => !running(c));
    if (dead && !interrupted) throw new Error(`a replica exited (${dead.exitCode ?? dead.signalCode}) while orders were still at 5`);
    await sleep(1000);
  }
}

/** Prints what happened and returns whether it is what should have happened. */
async function summarize(db, receiverStats) {
  const { rows } = await db.query('SELECT id, status, attempts, last_error FROM orders ORDER BY id');
  const orders = rows.map((r) => ({ ...r, id: Number(r.id) }));
  const delivered = orders.filter((o) => o.status === 6);
  const failed = orders.filter((o) => o.status === 7);
  const wrong = orders.filter((o) => o.status !== expectedStatus(o.id));
  const perId = [...receiverStats.perWebhookId.values()];
  const retries = perId.reduce((sum, s) => sum + s.requests - 1, 0);
  const duplicates = perId.filter((s) => s.accepted > 1).length;
  const expectedDelivered = orders.filter((o) => expectedStatus(o.id) === 6).length;

  console.log('\nsummary');
  console.log(`  delivered (6)             ${delivered.length} of ${expectedDelivered} expected`);
  console.log(`  failed (7)                ${failed.length} of ${orders.length - expectedDelivered} expected`);
  for (const o of failed) console.log(`    order ${o.id} after ${o.attempts} attempt(s): ${o.last_error}`);
  console.log(
    `  retries seen              ${retries} at the receiver; ${delivered.filter((o) => o.attempts > 1).length} orders delivered after a retry (${FLAKY.size} expected)`,
  );
  console.log(`  duplicate webhook-ids     ${duplicates} accepted more than once (expected 0)`);
  console.log(`  signature failures        ${receiverStats.badSignatures} (expected 0)`);
  if (wrong.length > 0) {
    const sample = wrong.slice(0, 10).map((o) => `${o.id}: ${o.status}, expected ${expectedStatus(o.id)}`);
    console.log(`  NOT IN THEIR EXPECTED STATE: ${wrong.length} orders (${sample.join('; ')}${wrong.length > 10 ? '; ...' : ''})`);
  }

  const ok = wrong.length === 0 && duplicates === 0 && receiverStats.badSignatures === 0;
  console.log(ok ? '\nOK: every order reached the state its endpoint dictates' : `\nFAILED: see above, and the replicas' log ${LOG_FILE}`);
  return ok;
}

// ---------------------------------------------------------------------------------------------------
// Cleanup: safe to call more than once, from any point; every step is best effort.

let cleaning;
function cleanup() {
  cleaning ||= (async () => {
    await stopReplicas().catch((err) => (console.error(`stopping the replicas: ${err.message}`), killReplicas()));
    const { receiver } = created;
    if (receiver) await new Promise((resolve) => receiver.server.close(resolve)).catch(() => {});
    if (receiver) receiver.server.closeAllConnections();
    await removeDemoQueue().catch((err) => console.error(`removing queue ${QUEUE_NAME}: ${err.message}`));
    if (created.db) await created.db.end().catch(() => {});
    if (created.database) await dropDemoDatabase().catch((err) => console.error(`dropping the demo database: ${err.message}`));
  })();
  return cleaning;
}

/**
 * Removes this run's queue, and only it, from Redis: every key under bull:<QUEUE_NAME>:, BullMQ's and
 * the daemon's own marker alike (BullMQ's obliterate() would leave the marker), and its partner state. The replicas are gone
 * by now, so nothing writes there any more. Bounded, in case Redis is what failed.
 */
async function removeDemoQueue() {
  if (created.replicas.length === 0) return; // nothing ever wrote to it
  const redis = new Redis(REDIS_URL, { connectTimeout: 2000, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => {}); // reported through the rejected promise below
  try {
    // The queue's keys, and the partner state kept under the queue's name (oc:{QUEUE_NAME}...).
    const patterns = [`bull:${QUEUE_NAME}:*`, `oc:{${QUEUE_NAME}}:*`, `oc:{${QUEUE_NAME}|*`];
    await withTimeout(Promise.all(patterns.map((pattern) => deleteKeys(redis, pattern))), 10_000, 'Redis did not answer within 10 s');
  } finally {
    redis.disconnect();
  }
}

async function deleteKeys(redis, pattern) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

// ---------------------------------------------------------------------------------------------------
// Small helpers

async function connect(connectionString) {
  const client = new Client({ connectionString, connectionTimeoutMillis: 5000 });
  client.on('error', (err) => console.error(`postgres: ${err.message}`));
  await client.connect();
  return client;
}

/** `node dist/cli.js <args>` to completion, its output on our console. */
function runCli(args) {
  runOrThrow(process.execPath, [CLI, ...args], { cwd: ROOT, env: daemonEnv({ LOG_LEVEL: 'warn' }) });
}

/** The last lines of the replicas' log, when something went wrong. */
function showLogTail(lines = 20) {
  if (!fs.existsSync(LOG_FILE)) return;
  const tail = fs.readFileSync(LOG_FILE, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  if (tail) console.error(`\nlast lines of ${LOG_FILE}:\n${tail}`);
}

/** A URL fit to print: without its password. */
function redact(value) {
  const url = new URL(value);
  if (url.password) url.password = '***';
  return url.toString();
}

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
