'use strict';
// The bench's own Redis: a redis-server on a free port, started once, flushed before each run so every
// run starts from the same empty state, and ended with the bench. Set BENCH_REDIS_URL to use another
// server instead; that one is never flushed (the bench removes its queues one by one).
const net = require('node:net');
const { spawn } = require('node:child_process');
const { Redis } = require('ioredis');
const { track } = require('./processes');
const { waitUntil } = require('./util');

let own;

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (probe.address());
      probe.close(() => resolve(port));
    });
  });
}

/** Starts the bench's Redis unless BENCH_REDIS_URL names one; sets BENCH_REDIS_URL for the rest of the bench. */
async function startOwnRedis() {
  if (process.env.BENCH_REDIS_URL) return;
  const port = await freePort();
  track(spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }));
  own = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  // Refused until the server listens: the wait below retries.
  own.on('error', () => undefined);
  await waitUntil(async () => (await own.ping().catch(() => undefined)) === 'PONG', 10_000, 50);
  process.env.BENCH_REDIS_URL = `redis://127.0.0.1:${port}`;
}

/** Empties the bench's own Redis (never one named by BENCH_REDIS_URL). */
async function flushOwnRedis() {
  if (own) await own.flushall();
}

async function closeOwnRedis() {
  if (own) await own.quit().catch(() => undefined);
}

module.exports = { startOwnRedis, flushOwnRedis, closeOwnRedis };
