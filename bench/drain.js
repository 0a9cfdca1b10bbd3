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
 * with `ports`: the orders spread over them). `cli`: another build's dist/cli.js to run instead.
 * @param {number} replicas
 * @param {{ n: number, warmup: number, env?: object, sink?: object, cli?: string }} options
 */
async function drain(replicas, { n, warmup, env: extra = {}, sink: sinkOptions = {}, cli }) {
  const sink = await startSink(sinkOptions);
  const db = await createDatabase();
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
    const partner = await sinkWindow(sink);
    await db.insert(1, n, sink.urls);
    const result = await measured(
      n,
      // Every order's first request comes after the warm-up's: the sink's count says when to read the table.
      () => waitForDeliveries(sink, n + warmup, async () => (await db.delivered(1, n + 1)) === n, 600_000),
      { daemons: daemons.map((d) => d.pid), sink: [sink.child.pid] },
    );
    return { ...result, peakDaemonRss: peakRss, partner: await partner() };
  } finally {
    clearInterval(sampler);
    await Promise.all(daemons.map((d) => stop(d)));
    await removeQueue(env.QUEUE_NAME);
    await stop(sink.child);
    await db.drop();
  }
}

module.exports = { daemonEnv, drain, sinkWindow };
