'use strict';
// Two simple ways to do the whole job (status 5 -> signed POST -> conditional update to 6), on the same
// table, sink and machine as order-callbacks: what a team would write instead of using it.
const crypto = require('node:crypto');
const { Pool } = require('pg');
const { Queue, Worker } = require('bullmq');
const { createDatabase } = require('./database');
const { startSink, stop } = require('./processes');
const { sinkWindow } = require('./drain');
const { createPoster, inParallel } = require('./sign-and-post');
const { measured, waitUntil } = require('./util');

const CONCURRENCY = 64;
const PAGE = 1000;
const MARK_DELIVERED = 'UPDATE orders SET status = 6, version = version + 1 WHERE id = $1 AND status = 5';
const redisConnection = () => {
  const url = new URL(process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379');
  return { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
};

/**
 * A fresh table of n orders at 5 for the sink, a pool on it, and cleanup; `run` does the job. It does
 * it first, off the clock, for `warmup` orders of their own, as the daemon's replicas do before theirs.
 * `sink`: the sink's options (several origins with `ports`); `timeoutMs`: the callbacks' timeout.
 * @param {number} n
 * @param {number} warmup
 * @param {(job: { pool: import('pg').Pool, poster: ReturnType<typeof createPoster>, count: number }) => Promise<void>} run
 * @param {{ sink?: object, timeoutMs?: number }} [options]
 */
async function withOrders(n, warmup, run, { sink: sinkOptions = {}, timeoutMs } = {}) {
  const sink = await startSink(sinkOptions);
  const db = await createDatabase();
  const pool = new Pool({ connectionString: db.url, max: 16 });
  // Dropping the database (WITH FORCE) may still meet a client that is closing: expected, not a failure.
  pool.on('error', () => undefined);
  const poster = createPoster({ timeoutMs });
  try {
    if (warmup > 0) {
      await db.insert(n + 1, warmup, sink.urls);
      await run({ pool, poster, count: warmup });
    }
    const partner = await sinkWindow(sink);
    await db.insert(1, n, sink.urls);
    const result = await measured(n, () => run({ pool, poster, count: n }), { sink: [sink.child.pid] });
    const delivered = await db.delivered(1, n + 1);
    if (delivered !== n) throw new Error(`${delivered} of ${n} orders delivered`);
    return { ...result, partner: await partner() };
  } finally {
    await poster.close();
    await pool.end();
    await stop(sink.child);
    await db.drop();
  }
}

/**
 * The pattern from the incident write-ups: select up to 1,000 at 5, POST and update each (64 at a time,
 * or `concurrency`), repeat. A callback that fails leaves its order at 5, for the next page.
 * @param {number} n
 * @param {number} warmup
 * @param {{ concurrency?: number, sink?: object, timeoutMs?: number }} [options]
 */
function seedLoop(n, warmup, { concurrency = CONCURRENCY, sink, timeoutMs } = {}) {
  return withOrders(
    n,
    warmup,
    async ({ pool, poster }) => {
      for (;;) {
        const { rows } = await pool.query('SELECT id, callback_url, payload FROM orders WHERE status = 5 ORDER BY id LIMIT $1', [PAGE]);
        if (rows.length === 0) return;
        await inParallel(rows.length, concurrency, async (i) => {
          try {
            await poster.post(rows[i].callback_url, rows[i].id, rows[i].payload);
          } catch {
            return;
          }
          await pool.query(MARK_DELIVERED, [rows[i].id]);
        });
      }
    },
    { sink, timeoutMs },
  );
}

/** Keyset pages of 1,000 -> addBulk with a jobId per order -> a Worker (64) that reads, POSTs and updates one order per job. */
function bullmqPlain(n, warmup) {
  return withOrders(n, warmup, async ({ pool, poster, count }) => {
    const name = `bench-peer-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    // Counted here, not by polling the table: a count over every order each 50 ms would be charged to
    // this peer's CPU and compete with it for the cores.
    let finished = 0;
    const queue = new Queue(name, { connection: redisConnection() });
    const worker = new Worker(
      name,
      async (job) => {
        try {
          const { rows } = await pool.query('SELECT callback_url, payload FROM orders WHERE id = $1 AND status = 5', [job.data.orderId]);
          if (rows.length === 0) return;
          await poster.post(rows[0].callback_url, job.data.orderId, rows[0].payload);
          await pool.query(MARK_DELIVERED, [job.data.orderId]);
        } finally {
          // A job that threw counts too: the check after the run then names the orders left at 5.
          finished += 1;
        }
      },
      { connection: redisConnection(), concurrency: CONCURRENCY, removeOnComplete: { count: 0 }, removeOnFail: { count: 0 } },
    );
    try {
      for (let last = 0; ;) {
        const { rows } = await pool.query('SELECT id FROM orders WHERE status = 5 AND id > $1 ORDER BY id LIMIT $2', [last, PAGE]);
        if (rows.length === 0) break;
        await queue.addBulk(rows.map(({ id }) => ({ name: 'callback', data: { orderId: id }, opts: { jobId: `order-${id}` } })));
        last = rows[rows.length - 1].id;
      }
      await waitUntil(async () => finished >= count, 600_000, 10);
    } finally {
      await worker.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
  });
}

module.exports = { seedLoop, bullmqPlain };
