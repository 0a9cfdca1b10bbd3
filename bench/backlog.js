'use strict';
// A backlog: `size` orders at 5 before the daemon starts. What must stay flat while it drains: Redis
// memory and key count (the queue is a bounded buffer, not a copy of the table), the producer's page
// cost (a keyset read, never OFFSET) and the daemon's memory.
const net = require('node:net');
const { Redis } = require('ioredis');
const { createDatabase } = require('./database');
const { startSink, waitForDeliveries, startDaemon, stop, removeQueue, rssBytes } = require('./processes');
const { machineCpuSeconds } = require('./util');

const SAMPLE_MS = 1000;
const PAGE_METRIC = 'order_callbacks_producer_page_duration_seconds';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/**
 * The page histogram from the daemon's /metrics: its cumulative buckets [[le, count], ...] and the
 * exact sum of the pages' seconds, which gives a mean that no bucket bound rounds.
 */
async function pageHistogram(port) {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const pattern = new RegExp(`^${PAGE_METRIC}_bucket\\{le="([^"]+)"\\} (\\d+)`, 'gm');
    const buckets = [...text.matchAll(pattern)].map(([, le, count]) => [le === '+Inf' ? Infinity : Number(le), Number(count)]);
    const sum = Number(new RegExp(`^${PAGE_METRIC}_sum (\\S+)`, 'm').exec(text)?.[1]);
    return buckets.length > 0 ? { buckets, sum } : undefined;
  } catch {
    return undefined; // not up yet, or already gone
  }
}

/** The p99 bound (bucket upper edge, seconds) of the pages read between two scrapes. */
function p99Between(before, after) {
  if (!after) return NaN;
  const counts = after.buckets.map(([le, count], i) => [le, count - (before ? before.buckets[i][1] : 0)]);
  const total = counts[counts.length - 1][1];
  if (total === 0) return NaN;
  return counts.find(([, count]) => count >= 0.99 * total)[0];
}

/** The mean seconds of the pages read between two scrapes: exact, from the histogram's sum and count. */
function meanBetween(before, after) {
  if (!after) return NaN;
  const count = after.buckets.at(-1)[1] - (before ? before.buckets.at(-1)[1] : 0);
  return count > 0 ? (after.sum - (before ? before.sum : 0)) / count : NaN;
}

/**
 * The mean page of each second between scrapes `from` and `to` (-1: the daemon's start). A second with
 * no page read (the queue full) has no mean and is left out.
 */
function meansPerSecond(scrapes, from, to) {
  const at = (i) => (i < 0 ? undefined : scrapes[i]);
  const means = [];
  for (let i = from; i < to; i++) means.push(meanBetween(at(i), at(i + 1)));
  return means.filter(Number.isFinite);
}

async function redisUsage(redis) {
  const memory = await redis.info('memory');
  return { usedMemory: Number(/** @type {RegExpExecArray} */ (/used_memory:(\d+)/.exec(memory))[1]), keys: await redis.dbsize() };
}

/** One drain of `size` orders by one replica of `start`. */
async function backlog(size, daemonEnv) {
  const sink = await startSink();
  const db = await createDatabase();
  const redis = new Redis(process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379');
  const env = daemonEnv(db.url);
  let daemon;
  let sampler;
  try {
    await db.insert(1, size, sink.url);
    await db.client.query('ANALYZE orders');
    const metricsPort = await freePort();
    const redisBefore = await redisUsage(redis);
    const samples = [];
    const scrapes = [];
    const cpuBefore = machineCpuSeconds();
    const started = Date.now();
    daemon = startDaemon({ ...env, METRICS_PORT: String(metricsPort) });
    const sample = async () => {
      const [usage, histogram] = await Promise.all([redisUsage(redis), pageHistogram(metricsPort)]);
      samples.push({ atS: (Date.now() - started) / 1000, rss: rssBytes(daemon.pid), ...usage });
      if (histogram) scrapes.push(histogram);
    };
    // A sample that fails (Redis gone) is an unhandled rejection: it ends the run, as it should.
    sampler = setInterval(() => void sample(), SAMPLE_MS);
    await waitForDeliveries(sink, size, async () => (await db.delivered(1, size + 1)) === size, 3_600_000);
    const seconds = (Date.now() - started) / 1000;
    const cpu = machineCpuSeconds() - cpuBefore;
    clearInterval(sampler);
    sampler = undefined;
    const last = await pageHistogram(metricsPort);
    const quarter = Math.max(1, Math.floor(scrapes.length / 4));
    // The same quarters as the means below, second by second: the samples of the goal's interval.
    const scraped = last ? [...scrapes, last] : scrapes;
    return {
      seconds,
      ordersPerSecond: size / seconds,
      cpuSecondsPer1k: (cpu / size) * 1000,
      // Absolute, as the goal reads (Redis under 64 MB); the baseline says what was there before.
      peakRedisUsedMemory: Math.max(...samples.map((s) => s.usedMemory)),
      peakRedisKeys: Math.max(...samples.map((s) => s.keys)),
      redisUsedMemoryBefore: redisBefore.usedMemory,
      redisKeysBefore: redisBefore.keys,
      peakDaemonRss: Math.max(...samples.map((s) => s.rss)),
      pageP99: p99Between(undefined, last),
      pageP99FirstQuarter: p99Between(undefined, scrapes[quarter - 1]),
      pageP99LastQuarter: p99Between(scrapes[scrapes.length - quarter - 1], last),
      pageMeanFirstQuarter: meanBetween(undefined, scrapes[quarter - 1]),
      pageMeanLastQuarter: meanBetween(scrapes[scrapes.length - quarter - 1], last),
      pageMeansFirstQuarter: meansPerSecond(scraped, -1, quarter - 1),
      pageMeansLastQuarter: meansPerSecond(scraped, scrapes.length - quarter - 1, scraped.length - 1),
      samples,
    };
  } finally {
    if (sampler) clearInterval(sampler);
    if (daemon) await stop(daemon);
    await removeQueue(env.QUEUE_NAME);
    redis.disconnect();
    await stop(sink.child);
    await db.drop();
  }
}

module.exports = { backlog };
