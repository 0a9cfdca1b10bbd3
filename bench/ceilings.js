'use strict';
// The physical limits of this box, each measured alone: what order-callbacks and the peers are compared with.
const crypto = require('node:crypto');
const { Pool } = require('pg');
const { Queue, Worker } = require('bullmq');
const { createDatabase } = require('./database');
const { startSink, stop } = require('./processes');
const { createPoster, inParallel } = require('./sign-and-post');
const { measured, waitUntil } = require('./util');

const CONCURRENCY = 64;
const PAYLOAD = { sku: 'SKU-1', quantity: 1 };
const redisConnection = () => {
  const url = new URL(process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379');
  return { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
};

/** n signed POSTs from this process to the sink, 64 at a time over keep-alive connections. */
async function rawSignedPosts(n) {
  const sink = await startSink();
  const poster = createPoster();
  try {
    return await measured(n, () => inParallel(n, CONCURRENCY, (i) => poster.post(sink.url, i, PAYLOAD)), { sink: [sink.child.pid] });
  } finally {
    await poster.close();
    await stop(sink.child);
  }
}

/**
 * n orders 5 -> 6 by conditional updates, `perStatement` orders per statement, 16 connections at once.
 * Checks that every order moved.
 */
async function conditionalUpdates(n, perStatement) {
  const db = await createDatabase();
  const pool = new Pool({ connectionString: db.url, max: 16 });
  // Dropping the database (WITH FORCE) may still meet a client that is closing: expected, not a failure.
  pool.on('error', () => undefined);
  try {
    await db.insert(1, n, 'http://127.0.0.1:9/never-called');
    const statements = Math.ceil(n / perStatement);
    const result = await measured(n, () =>
      inParallel(statements, 16, async (s) => {
        const first = 1 + s * perStatement;
        const ids = Array.from({ length: Math.min(perStatement, n - s * perStatement) }, (_, k) => first + k);
        if (ids.length === 1) {
          await pool.query('UPDATE orders SET status = 6, version = version + 1 WHERE id = $1 AND status = 5', [ids[0]]);
        } else {
          await pool.query('UPDATE orders SET status = 6, version = version + 1 WHERE id = ANY($1::bigint[]) AND status = 5', [ids]);
        }
      }),
    );
    const delivered = await db.delivered(1, n + 1);
    if (delivered !== n) throw new Error(`conditional updates: ${delivered} of ${n} orders moved`);
    return result;
  } finally {
    await pool.end();
    await db.drop();
  }
}

/** BullMQ alone: addBulk of n jobs (timed apart), then a no-op Worker at concurrency 64 drains them. */
async function bullmqAlone(n) {
  const name = `bench-ceiling-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const queue = new Queue(name, { connection: redisConnection() });
  /** @type {import('bullmq').Worker | undefined} */
  let worker;
  try {
    const adds = await measured(n, async () => {
      for (let i = 0; i < n; i += 1000) {
        const jobs = Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({
          name: 'callback',
          data: { orderId: String(i + k) },
          opts: { jobId: `order-${i + k}`, removeOnComplete: true, removeOnFail: true },
        }));
        await queue.addBulk(jobs);
      }
    });
    let completed = 0;
    const processing = await measured(n, async () => {
      worker = new Worker(name, async () => undefined, {
        connection: redisConnection(),
        concurrency: CONCURRENCY,
        removeOnComplete: { count: 0 },
        removeOnFail: { count: 0 },
      });
      worker.on('completed', () => (completed += 1));
      await waitUntil(() => completed >= n, 300_000);
    });
    return { ...processing, addsPerSecond: adds.ordersPerSecond };
  } finally {
    if (worker) await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

module.exports = { rawSignedPosts, conditionalUpdates, bullmqAlone };
