'use strict';
// Pickup latency: with the daemon running and idle, a driver sets orders to 5 at a fixed rate; each
// order's latency runs from the moment the driver saw its UPDATE commit to the first callback for it
// arriving at the sink. Driver and sink run on the same machine, so they read the same clock.
const { createDatabase } = require('./database');
const { startSink, askSink, startDaemon, stop, removeQueue } = require('./processes');
const { percentile, waitUntil } = require('./util');

const TICK_MS = 5;
/** Ids far from other scenarios' orders; they wait at status 1 until the driver sets them to 5. */
const FIRST_ID = 5_000_000;

const now = () => performance.timeOrigin + performance.now();

/** Sets orders to 5 at `rate` per second for `seconds`, in small steps; answers id -> commit time. */
async function drive(db, rate, seconds) {
  const committed = new Map();
  const total = Math.round(rate * seconds);
  const started = now();
  let next = FIRST_ID;
  while (next < FIRST_ID + total) {
    const due = Math.min(FIRST_ID + total, FIRST_ID + Math.floor(((now() - started) / 1000) * rate));
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
    await db.client.query(
      `INSERT INTO orders (id, status, callback_url, payload)
       SELECT g, 1, $1, jsonb_build_object('sku', 'SKU-' || g) FROM generate_series($2::bigint, $3::bigint) g`,
      [sink.url, FIRST_ID, FIRST_ID + total - 1],
    );
    daemon = startDaemon(env);
    // Ready and idle before the clock starts: a first order that waits for the daemon's start is not pickup.
    await db.insert(1, 1, sink.url);
    await waitUntil(async () => (await db.delivered(1, 2)) === 1, 60_000);

    const committed = await drive(db, rate, seconds);
    await waitUntil(async () => (await db.delivered(FIRST_ID, FIRST_ID + total)) === total, 120_000);
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
