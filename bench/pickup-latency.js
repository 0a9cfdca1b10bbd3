'use strict';
// Pickup latency: with the daemon running, a driver sets orders to 5 at a fixed rate; each order's
// latency runs from the moment the driver saw its UPDATE commit to the first callback for it arriving
// at the sink. Driver and sink run on the same machine, so they read the same clock. The daemon is
// warmed up first by the same rate for WARMUP_SECONDS, not counted: the figure is that of a daemon that
// has been running, as in production; its cold start (JIT, pools filling) is in the backlog figure.
const { createDatabase } = require('./database');
const { startSink, askSink, waitForDeliveries, startDaemon, stop, removeQueue } = require('./processes');
const { percentile, waitUntil } = require('./util');

const TICK_MS = 5;
const WARMUP_SECONDS = 3;
/** Ids far from other scenarios' orders; they wait at status 1 until the driver sets them to 5. */
const FIRST_ID = 5_000_000;
const WARMUP_FIRST_ID = 4_000_000;

const now = () => performance.timeOrigin + performance.now();

/** Inserts `total` orders at status 1 from `firstId`: the driver sets them to 5. */
function insertWaiting(db, firstId, total, callbackUrl) {
  return db.client.query(
    `INSERT INTO orders (id, status, callback_url, payload)
     SELECT g, 1, $1, jsonb_build_object('sku', 'SKU-' || g) FROM generate_series($2::bigint, $3::bigint) g`,
    [callbackUrl, firstId, firstId + total - 1],
  );
}

/** Sets orders from `firstId` to 5 at `rate` per second for `seconds`, in small steps; answers id -> commit time. */
async function drive(db, rate, seconds, firstId = FIRST_ID) {
  const committed = new Map();
  const total = Math.round(rate * seconds);
  const started = now();
  let next = firstId;
  while (next < firstId + total) {
    const due = Math.min(firstId + total, firstId + Math.floor(((now() - started) / 1000) * rate));
    if (due > next) {
      await db.client.query('UPDATE orders SET status = 5 WHERE id >= $1 AND id < $2 AND status = 1', [next, due]);
      const at = now();
      for (let id = next; id < due; id++) committed.set(`order-${id}`, at);
      next = due;
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
  return committed;
}

/** p50 and p99 by the second the order was set to 5: shows whether latency holds or builds up. */
function latencyPerSecond(committed, arrivals) {
  const first = Math.min(...committed.values());
  const bySecond = [];
  for (const [id, at] of arrivals) {
    if (!committed.has(id)) continue;
    const second = Math.floor((committed.get(id) - first) / 1000);
    (bySecond[second] ??= []).push(at - committed.get(id));
  }
  return bySecond.map((latencies, second) => ({ second, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }));
}

/**
 * One run at `rate` orders/s for `seconds` with one replica of `start`. Answers the latency
 * percentiles in milliseconds.
 */
async function pickupLatency(rate, seconds, daemonEnv) {
  const sink = await startSink({ record: true });
  const db = await createDatabase();
  const env = daemonEnv(db.url);
  let daemon;
  try {
    const total = Math.round(rate * seconds);
    const warmup = Math.round(rate * WARMUP_SECONDS);
    await insertWaiting(db, FIRST_ID, total, sink.url);
    await insertWaiting(db, WARMUP_FIRST_ID, warmup, sink.url);
    daemon = startDaemon(env);
    // Started and warmed up before the clock starts: an order that waits for the daemon's start is not pickup.
    await db.insert(1, 1, sink.url);
    await waitUntil(async () => (await db.delivered(1, 2)) === 1, 60_000);
    await drive(db, rate, WARMUP_SECONDS, WARMUP_FIRST_ID);
    await waitUntil(async () => (await db.delivered(WARMUP_FIRST_ID, WARMUP_FIRST_ID + warmup)) === warmup, 120_000);

    const committed = await drive(db, rate, seconds);
    // The sink has seen the first order, the warm-up and the measured ones.
    await waitForDeliveries(sink, 1 + warmup + total, async () => (await db.delivered(FIRST_ID, FIRST_ID + total)) === total, 120_000);
    const { arrivals } = await askSink(sink, 'arrivals');
    const latencies = arrivals.filter(([id]) => committed.has(id)).map(([id, at]) => at - committed.get(id));
    if (latencies.length !== total) throw new Error(`pickup latency: ${latencies.length} of ${total} callbacks seen`);
    return {
      p50: percentile(latencies, 0.5),
      p95: percentile(latencies, 0.95),
      p99: percentile(latencies, 0.99),
      perSecond: latencyPerSecond(committed, arrivals),
    };
  } finally {
    if (daemon) await stop(daemon);
    await removeQueue(env.QUEUE_NAME);
    await stop(sink.child);
    await db.drop();
  }
}

module.exports = { pickupLatency };
