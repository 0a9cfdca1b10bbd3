'use strict';
// npm run bench [-- --quick] [-- --backlog N] [-- --only SECTION,...]: the figures of issue 5, on this
// machine, loopback only. --only (ceilings, peers, drain, pickup, backlog, isolation) runs some sections,
// to measure one change before and after; such a partial run writes its JSON but not BENCHMARKS.md.
// Every guarantee stays on in every run of order-callbacks (claims, conditional updates, delivery log,
// signatures). Each figure is taken twice, in this order, so ratios come from the same minutes, and the
// median of the two (their mean) reported. Results: bench/results/<time>.json and BENCHMARKS.md.
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { createDatabase } = require('./database');
const { startSink, waitForDeliveries, startDaemon, stop, removeQueue, rssBytes } = require('./processes');
const { measured, waitUntil } = require('./util');
const ceilings = require('./ceilings');
const peers = require('./peers');
const { pickupLatency } = require('./pickup-latency');
const { backlog } = require('./backlog');
const { renderReport } = require('./report');

const quick = process.argv.includes('--quick');
const backlogArg = process.argv.indexOf('--backlog');
const SIZES = {
  N: quick ? 2000 : 50_000,
  // Delivered off the clock before each drain, peers and order-callbacks alike, by the same processes:
  // each is measured as it runs after its first seconds (code compiled, heap grown), as a long-lived
  // daemon does. Cold starts are in the backlog figure. 5,000 warmed the daemon as much as 20,000.
  warmup: quick ? 200 : 5000,
  latencySeconds: quick ? 3 : 30,
  latencyRates: [500, 2000],
  backlog: backlogArg > 0 ? Number(process.argv[backlogArg + 1]) : quick ? 20_000 : 1_000_000,
  isolation: quick ? { healthy: 1000, bad: 2000 } : { healthy: 5000, bad: 5000 },
  partners: quick ? 1000 : 10_000,
};
if (!(SIZES.backlog > 0)) throw new Error('--backlog needs a positive number of orders');
const SECTIONS = ['ceilings', 'peers', 'drain', 'pickup', 'backlog', 'isolation', 'partners'];
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? String(process.argv[onlyArg + 1] ?? '').split(',') : SECTIONS;
for (const section of only) {
  if (!SECTIONS.includes(section)) throw new Error(`--only: unknown section "${section}"; sections: ${SECTIONS.join(', ')}`);
}
const partial = only.length < SECTIONS.length;
const runs = (section) => only.includes(section);
const SECRET = `whsec_${crypto.randomBytes(24).toString('base64')}`;

/** The daemon as users run it: its defaults, except that the sink is on loopback and logs stay quiet. */
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
 * order-callbacks as users run it: `replicas` × `start`, N orders at 5 → all 6. The replicas are up and
 * have delivered the warm-up orders first, then the clock runs from the commit that makes N orders
 * ready, as for the peers; startup is in the backlog figure.
 */
async function drain(replicas) {
  const sink = await startSink();
  const db = await createDatabase();
  const env = daemonEnv(db.url);
  let daemons = [];
  let sampler;
  try {
    daemons = Array.from({ length: replicas }, () => startDaemon(env));
    let peakRss = 0;
    sampler = setInterval(() => (peakRss = Math.max(peakRss, ...daemons.map((d) => rssBytes(d.pid)))), 250);
    const warmupIds = [SIZES.N + 1, SIZES.N + 1 + SIZES.warmup];
    await db.insert(warmupIds[0], SIZES.warmup, sink.url);
    await waitUntil(async () => (await db.delivered(...warmupIds)) === SIZES.warmup, 120_000);
    await db.insert(1, SIZES.N, sink.url);
    // The warm-up orders were the sink's first requests.
    const result = await measured(
      SIZES.N,
      () => waitForDeliveries(sink, SIZES.N + SIZES.warmup, async () => (await db.delivered(1, SIZES.N + 1)) === SIZES.N, 600_000),
      { daemons: daemons.map((d) => d.pid), sink: [sink.child.pid] },
    );
    return { ...result, peakDaemonRss: peakRss };
  } finally {
    clearInterval(sampler);
    await Promise.all(daemons.map((d) => stop(d)));
    await removeQueue(env.QUEUE_NAME);
    await stop(sink.child);
    await db.drop();
  }
}

/** The healthy partner's drain time, alone and beside a partner that never answers (2 replicas). */
async function isolation(withBadPartner) {
  const healthy = await startSink();
  const bad = await startSink({ never: true });
  const db = await createDatabase();
  const env = daemonEnv(db.url, { CALLBACK_TIMEOUT_MS: '2000', MAX_ATTEMPTS: '3', HOST_MAX_IN_FLIGHT: '16' });
  let daemons = [];
  try {
    if (withBadPartner) await db.insert(1, SIZES.isolation.bad, bad.url);
    await db.insert(1_000_000, SIZES.isolation.healthy, healthy.url);
    const started = process.hrtime.bigint();
    daemons = [startDaemon(env), startDaemon(env)];
    const healthyIds = [1_000_000, 1_000_000 + SIZES.isolation.healthy];
    await waitForDeliveries(healthy, SIZES.isolation.healthy, async () => (await db.delivered(...healthyIds)) === SIZES.isolation.healthy, 600_000);
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    await Promise.all(daemons.map((d) => stop(d)));
    await removeQueue(env.QUEUE_NAME);
    await Promise.all([stop(healthy.child), stop(bad.child)]);
    await db.drop();
  }
}

/**
 * The partner scenarios' settings: the defaults (retries from RETRY_BASE_MS = 1 s, doubling), but a 2 s
 * callback timeout, so that a never-answering order holds one of the partner's slots for 2 s, not 10.
 */
const PARTNER_SCENARIO = { CALLBACK_TIMEOUT_MS: '2000' };
const RETRY_DELAY_SECONDS = 1;

/**
 * One partner's drain, 2 replicas started before the clock: `count` orders at 5 to a sink answering as
 * `sink` says, until `expected` of them are delivered (a mixed partner's other orders never are).
 */
async function partnerDrain(sink, count, expected) {
  const partner = await startSink(sink);
  const db = await createDatabase();
  const env = daemonEnv(db.url, PARTNER_SCENARIO);
  let daemons = [];
  try {
    daemons = [startDaemon(env), startDaemon(env)];
    const warmupIds = [count + 1, count + 1 + SIZES.warmup];
    const warm = await startSink();
    await db.insert(warmupIds[0], SIZES.warmup, warm.url);
    await waitUntil(async () => (await db.delivered(...warmupIds)) === SIZES.warmup, 120_000);
    await stop(warm.child);
    const started = process.hrtime.bigint();
    await db.insert(1, count, partner.url);
    await waitUntil(async () => (await db.delivered(1, count + 1)) === expected, 600_000);
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    await Promise.all(daemons.map((d) => stop(d)));
    await removeQueue(env.QUEUE_NAME);
    await stop(partner.child);
    await db.drop();
  }
}

/** How many of orders 1..n a --mixed sink answers 200 (its hash of each webhook-id, as sink.js has it). */
function mixedHealthy(n) {
  let healthy = 0;
  for (let id = 1; id <= n; id++) if (crypto.createHash('sha256').update(`order-${id}`).digest()[0] % 10 < 5) healthy++;
  return healthy;
}

const isNumberRecord = (value) =>
  value !== null && typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((inner) => typeof inner === 'number');

/** The mean of two runs' numbers, and of the numbers one level down (the CPU split by process). */
function meanOfTwo(a, b) {
  const out = {};
  for (const key of Object.keys(a)) {
    if (typeof a[key] === 'number') out[key] = (a[key] + b[key]) / 2;
    else if (isNumberRecord(a[key]) && isNumberRecord(b[key])) {
      out[key] = Object.fromEntries(Object.keys(a[key]).map((inner) => [inner, (a[key][inner] + b[key][inner]) / 2]));
    }
  }
  return out;
}

/** Runs a scenario twice; numbers are reported as the median of the two (their mean), runs kept. */
async function twice(name, run) {
  process.stdout.write(`${name}... `);
  const a = await run();
  const b = await run();
  console.log('done');
  return { ...meanOfTwo(a, b), runs: [a, b] };
}

function machine() {
  const version = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0];
    } catch {
      return 'unknown';
    }
  };
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    postgres: version('psql', ['--version']),
    redis: version('redis-server', ['--version']),
  };
}

const BENCHMARKS = path.join(__dirname, '..', 'BENCHMARKS.md');
const HISTORY_MARK = '<!-- history: kept by npm run bench -->';

/** The hand-kept part of BENCHMARKS.md (what changed, measured before and after), from its mark on. */
function keptHistory() {
  const current = fs.existsSync(BENCHMARKS) ? fs.readFileSync(BENCHMARKS, 'utf8') : '';
  const at = current.indexOf(HISTORY_MARK);
  return `\n${at >= 0 ? current.slice(at) : `${HISTORY_MARK}\n## History\n`}`;
}

async function main() {
  const command = `npm run bench${quick ? ' -- --quick' : ''}${backlogArg > 0 ? ` -- --backlog ${SIZES.backlog}` : ''}${partial ? ` -- --only ${only.join(',')}` : ''}`;
  console.log(`${command}: N = ${SIZES.N}, backlog ${SIZES.backlog}, pickup ${SIZES.latencySeconds} s at ${SIZES.latencyRates.join(' and ')}/s`);
  const { N } = SIZES;
  const results = { at: new Date().toISOString(), command, machine: machine(), sizes: SIZES };
  if (runs('ceilings')) {
    results.ceilings = {
      signedPosts: await twice('ceiling: raw signed POSTs', () => ceilings.rawSignedPosts(N)),
      updatesOne: await twice('ceiling: conditional updates, 1 per statement', () => ceilings.conditionalUpdates(N, 1)),
      updatesHundred: await twice('ceiling: conditional updates, 100 per statement', () => ceilings.conditionalUpdates(N, 100)),
      bullmq: await twice('ceiling: BullMQ alone', () => ceilings.bullmqAlone(N)),
    };
  }
  if (runs('peers')) {
    results.peers = {
      seedLoop: await twice('peer: seed-loop', () => peers.seedLoop(N, SIZES.warmup)),
      bullmqPlain: await twice('peer: bullmq-plain', () => peers.bullmqPlain(N, SIZES.warmup)),
    };
  }
  if (runs('drain')) {
    results.orderCallbacks = {
      oneReplica: await twice('order-callbacks, 1 replica', () => drain(1)),
      twoReplicas: await twice('order-callbacks, 2 replicas', () => drain(2)),
    };
  }
  if (runs('pickup')) {
    results.pickup = {};
    for (const rate of SIZES.latencyRates) {
      results.pickup[rate] = await twice(`pickup latency at ${rate}/s`, () => pickupLatency(rate, SIZES.latencySeconds, daemonEnv));
    }
  }
  if (runs('backlog')) results.backlog = await twice(`backlog of ${SIZES.backlog}`, () => backlog(SIZES.backlog, daemonEnv));
  if (runs('isolation')) {
    results.isolation = {
      healthyAlone: await twice('isolation: healthy partner alone', () => isolation(false)),
      healthyBesideBad: await twice('isolation: beside a partner that never answers', () => isolation(true)),
    };
  }

  if (runs('partners')) {
    const n = SIZES.partners;
    const healthyOfMixed = mixedHealthy(n);
    results.partners = {
      healthy: await twice(`partners: all-healthy partner (${n})`, () => partnerDrain({}, n, n)),
      flaky: await twice(`partners: 1 order in 4 fails its first try (${n})`, () => partnerDrain({ flaky: true }, n, n)),
      healthyOfMixedSize: await twice(`partners: all-healthy partner (${healthyOfMixed})`, () => partnerDrain({}, healthyOfMixed, healthyOfMixed)),
      mixed: await twice(`partners: mixed outcomes (${n}, ${healthyOfMixed} healthy)`, () => partnerDrain({ mixed: true }, n, healthyOfMixed)),
      healthyOfMixed,
      retryDelaySeconds: RETRY_DELAY_SECONDS,
      callbackTimeoutSeconds: Number(PARTNER_SCENARIO.CALLBACK_TIMEOUT_MS) / 1000,
    };
  }

  const report = renderReport(results);
  console.log(`\n${report.table}\n`);
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  const file = path.join(__dirname, 'results', `${results.at.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify(results, null, 2));
  // A quick run's figures are too small to compare: it checks the bench still runs, and leaves the
  // published table alone.
  const publish = !quick && !partial;
  if (publish) fs.writeFileSync(BENCHMARKS, report.markdown + keptHistory());
  console.log(`written: ${path.relative(process.cwd(), file)}${publish ? ', BENCHMARKS.md' : ''}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${err.stack || err.message}`);
    process.exit(1);
  },
);
