'use strict';
// order-callbacks as users run it: `start` replicas with their defaults, the sink on loopback, every
// guarantee on (claims, conditional updates, delivery log, signatures).
const crypto = require('node:crypto');
const { createDatabase } = require('./database');
const { startSink, askSink, waitForDeliveries, startDaemon, stop, removeQueue, rssBytes } = require('./processes');
const { measured, waitUntil } = require('./util');

const SECRET = `whsec_${crypto.randomBytes(24).toString('base64')}`;

/** The daemon's environment: its defaults, except that the sink is on loopback and logs stay quiet. */
function daemonEnv(databaseUrl, extra = {}) {
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL: process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379',
    QUEUE_NAME: `oc-bench-${process.pid}-${crypto.randomBytes(3).toString('hex')}`,
    CALLBACK_SECRET: SECRET,
    CALLBACK_ALLOW_PRIVATE: 'true', // the sink is on 127.0.0.1
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** Postgres' stats flush about once a second: a read sooner after the last write would miss some. */
const STATS_FLUSH_MS = 1100;

/**
 * Updates of `orders` so far, and how many of them were in place (HOT: no index entry added), a moment
 * after the last write so that the server's counters have them.
 * @param {import('pg').Client} client
 */
async function orderUpdates(client) {
  await new Promise((resolve) => setTimeout(resolve, STATS_FLUSH_MS));
  const { rows } = await client.query(
    "SELECT n_tup_upd AS updates, n_tup_hot_upd AS in_place FROM pg_stat_user_tables WHERE relname = 'orders'",
  );
  return { updates: Number(rows[0]?.updates ?? NaN), inPlace: Number(rows[0]?.in_place ?? NaN) };
}

/**
 * What a sink did between two moments: requests, for a realistic sink the answered ones, the sum of
 * their delays and the never-answered ones, and `sustained`: requests per second between the 10th and
 * the 90th percentile of their arrivals. Call the answer again to read them.
 */
async function sinkWindow(sink) {
  const before = await askSink(sink, 'count');
  return async () => {
    const after = await askSink(sink, 'count');
    const { sustained } = await askSink(sink, { sustainedSince: before.requests });
    return { ...Object.fromEntries(Object.keys(after).map((key) => [key, after[key] - (before[key] ?? 0)])), sustained };
  };
}

/**
 * `replicas` × `start`, `n` orders at 5 → all 6. The replicas are up and have delivered `warmup` orders
 * first, then the clock runs from the commit that makes the n orders ready; startup is in the backlog
 * figure. `env` is added to the daemon's environment, `sink` are the sink's options (several origins
 * with `ports`: the orders spread over them). `cli`: another build's dist/cli.js to run instead. `sql`:
 * run on the fresh database after its migrations, before any order is written (a table setting).
 * @param {number} replicas
 * @param {{ n: number, warmup: number, env?: object, sink?: object, cli?: string, sql?: string }} options
 */
async function drain(replicas, { n, warmup, env: extra = {}, sink: sinkOptions = {}, cli, sql }) {
  const sink = await startSink(sinkOptions);
  const db = await createDatabase();
  if (sql) await db.client.query(sql);
  const env = daemonEnv(db.url, extra);
  let daemons = [];
  let sampler;
  try {
    daemons = Array.from({ length: replicas }, () => startDaemon(env, cli));
    let peakRss = 0;
    sampler = setInterval(() => (peakRss = Math.max(peakRss, ...daemons.map((d) => rssBytes(d.pid)))), 250);
    const warmupIds = [n + 1, n + 1 + warmup];
    await db.insert(warmupIds[0], warmup, sink.urls);
    await waitUntil(async () => (await db.delivered(...warmupIds)) === warmup, 120_000);
    const rowsBefore = await orderUpdates(db.client);
    const partner = await sinkWindow(sink);
    await db.insert(1, n, sink.urls);
    const result = await measured(
      n,
      // Every order's first request comes after the warm-up's: the sink's count says when to read the table.
      () => waitForDeliveries(sink, n + warmup, async () => (await db.delivered(1, n + 1)) === n, 600_000),
      { daemons: daemons.map((d) => d.pid), sink: [sink.child.pid] },
    );
    const rowsAfter = await orderUpdates(db.client);
    const updates = {
      perOrder: (rowsAfter.updates - rowsBefore.updates) / n,
      inPlacePerOrder: (rowsAfter.inPlace - rowsBefore.inPlace) / n,
    };
    return { ...result, peakDaemonRss: peakRss, partner: await partner(), updates };
  } finally {
    clearInterval(sampler);
    await Promise.all(daemons.map((d) => stop(d)));
    await removeQueue(env.QUEUE_NAME);
    await stop(sink.child);
    await db.drop();
  }
}

module.exports = { daemonEnv, drain, sinkWindow };
