'use strict';
// npm run bench [-- --quick] [-- --pairs N] [-- --backlog N] [-- --only SECTION,...]: the figures and
// goals of BENCHMARKS.md, on this machine, loopback only. --only runs some sections, to measure one change
// before and after; such a partial run writes its JSON but not BENCHMARKS.md.
// Every guarantee stays on in every run of order-callbacks (claims, conditional updates, delivery log,
// signatures). Overhead, realistic, scaling, pickup, isolation and partners are measured in N rounds,
// each running every scenario back to back from the same state in alternating order; a ratio is the
// geometric mean of the per-round ratios, a figure the mean over the rounds, each with a 95 % bootstrap
// interval (bench/stats.js). The backlog, too long for rounds, runs twice; its page cost is the median
// second of a quarter, with an interval over the seconds. Ceilings, peers and drain run twice and report the mean of the
// two; the mixed-outcome partner runs once. Results: bench/results/<time>.json and BENCHMARKS.md.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { createDatabase, admin } = require('./database');
const { startSink, waitForDeliveries, startDaemon, stop, removeQueue } = require('./processes');
const { waitUntil } = require('./util');
const { daemonEnv, drain } = require('./drain');
const { startOwnRedis, flushOwnRedis, closeOwnRedis } = require('./redis');
const paired = require('./paired');
const { median, ratioOfMeans } = require('./stats');
const realistic = require('./realistic');
const ceilings = require('./ceilings');
const peers = require('./peers');
const { pickupLatency } = require('./pickup-latency');
const { backlog } = require('./backlog');
const { renderReport } = require('./report');
const { build, machine, publishReport, reportFrom } = require('./publish');

const quick = process.argv.includes('--quick');
const backlogArg = process.argv.indexOf('--backlog');
const pairsArg = process.argv.indexOf('--pairs');
const SIZES = {
  // Rounds of each comparison: 16 give an interval of about ±5 % at this box's spread.
  pairs: pairsArg > 0 ? Number(process.argv[pairsArg + 1]) : quick ? 2 : 16,
  overhead: quick ? { n: 2000, warmup: 200 } : { n: 20_000, warmup: 5000 },
  realistic: quick ? { n: 1000, warmup: 200 } : { n: 8000, warmup: 1000 },
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
if (!(Number.isInteger(SIZES.pairs) && SIZES.pairs >= 2)) throw new Error('--pairs needs a whole number of rounds, at least 2');
// --lever 'NAME=VALUE,...': one replica with its defaults against one with these settings, in rounds.
// --against DIR: this build against another checkout's (DIR/dist/cli.js, built), same settings.
const leverArg = process.argv.indexOf('--lever');
const againstArg = process.argv.indexOf('--against');
const against = againstArg > 0 ? path.resolve(String(process.argv[againstArg + 1])) : undefined;
const againstCli = against && path.join(against, 'dist', 'cli.js');
if (againstCli && !fs.existsSync(againstCli)) throw new Error(`--against: no build at ${againstCli} (run npm ci && npm run build there)`);
// --lever-sql 'SQL': run on the lever side's fresh database before its orders are written (a table
// setting such as fillfactor); alone, or with --lever.
const leverSqlArg = process.argv.indexOf('--lever-sql');
const leverSql = leverSqlArg > 0 ? String(process.argv[leverSqlArg + 1] ?? '') : undefined;
if (leverSql !== undefined && !leverSql.trim()) throw new Error('--lever-sql needs a statement');
const lever = leverArg > 0 ? parseLever(process.argv[leverArg + 1]) : against || leverSql ? {} : undefined;
// --lever-sinks realistic|instant: measure the lever on one sink only (both by default).
const leverSinksArg = process.argv.indexOf('--lever-sinks');
const leverSinks = leverSinksArg > 0 ? String(process.argv[leverSinksArg + 1]).split(',') : ['realistic', 'instant'];
if (leverSinks.some((sink) => !['realistic', 'instant'].includes(sink))) throw new Error('--lever-sinks: realistic, instant or both');
const SECTIONS = ['overhead', 'realistic', 'scaling', 'ceilings', 'peers', 'drain', 'pickup', 'backlog', 'isolation', 'partners'];
const onlyArg = process.argv.indexOf('--only');
const only = lever ? ['lever'] : onlyArg > 0 ? String(process.argv[onlyArg + 1] ?? '').split(',') : SECTIONS;
for (const section of only) {
  if (!SECTIONS.includes(section) && !lever) throw new Error(`--only: unknown section "${section}"; sections: ${SECTIONS.join(', ')}`);
}
const partial = only.length < SECTIONS.length;
const runs = (section) => only.includes(section);

/** `NAME=VALUE,NAME=VALUE` → an environment; a value may hold '=' (NODE_OPTIONS=--max-semi-space-size=32). */
function parseLever(text) {
  const env = {};
  for (const setting of String(text ?? '')
    .split(',')
    .filter(Boolean)) {
    const at = setting.indexOf('=');
    if (at <= 0) throw new Error(`--lever: "${setting}" is not NAME=VALUE`);
    env[setting.slice(0, at)] = setting.slice(at + 1);
  }
  if (Object.keys(env).length === 0) throw new Error('--lever needs NAME=VALUE[,NAME=VALUE...]');
  return env;
}

/** Updates of orders per order over the rounds, and of them in place (drain's `updates`). */
function meanUpdates(runs) {
  const mean = (key) => runs.reduce((sum, run) => sum + run.updates[key], 0) / runs.length;
  return { perOrder: mean('perOrder'), inPlacePerOrder: mean('inPlacePerOrder') };
}

/** The same state before every measured run: dirty pages written out, the bench's own Redis empty. */
async function settle() {
  await admin('CHECKPOINT');
  await flushOwnRedis();
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
    await waitForDeliveries(
      healthy,
      SIZES.isolation.healthy,
      async () => (await db.delivered(...healthyIds)) === SIZES.isolation.healthy,
      600_000,
    );
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    await Promise.all(daemons.map((d) => stop(d)));
    await removeQueue(env.QUEUE_NAME);
    await Promise.all([stop(healthy.child), stop(bad.child)]);
    await db.drop();
  }
}

/**
 * The partner scenarios' settings: retries from 1 s, doubling (RETRY_BASE_MS), so a retry's wait does not
 * swamp the drain, and a 2 s callback timeout, so that a never-answering order holds one of the
 * partner's slots for 2 s, not 10.
 */
const PARTNER_SCENARIO = { CALLBACK_TIMEOUT_MS: '2000', RETRY_BASE_MS: '1000' };
const RETRY_DELAY_SECONDS = 1;
/** Goal 3: the flaky partner's drain may take this many times the all-healthy one, plus one retry delay. */
const FLAKY_ALLOWANCE = 1.5;

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

/** Runs a scenario once, from the same state as every measured run. */
async function once(name, run) {
  process.stdout.write(`${name}... `);
  await settle();
  const result = await run();
  console.log('done');
  return result;
}

/** Runs a scenario twice; numbers are reported as the median of the two (their mean), runs kept. */
async function twice(name, run) {
  process.stdout.write(`${name}... `);
  await settle();
  const a = await run();
  await settle();
  const b = await run();
  console.log('done');
  return { ...meanOfTwo(a, b), runs: [a, b] };
}

async function main() {
  const reportArg = process.argv.indexOf('--report');
  if (reportArg > 0) return reportFrom(process.argv.slice(reportArg + 1));
  const flags = process.argv.slice(2).join(' ');
  const command = `npm run bench${flags ? ` -- ${flags}` : ''}`;
  console.log(
    `${command}: ${SIZES.pairs} rounds per comparison, N = ${SIZES.N}, backlog ${SIZES.backlog}, pickup ${SIZES.latencySeconds} s at ${SIZES.latencyRates.join(' and ')}/s`,
  );
  await startOwnRedis();
  const { N } = SIZES;
  const results = { at: new Date().toISOString(), command, build: build(), machine: machine(), sizes: SIZES };
  if (runs('overhead')) {
    const { n, warmup } = SIZES.overhead;
    const rounds = await paired.inRounds(
      `overhead (${n} orders, instant sink)`,
      { seedLoop: () => peers.seedLoop(n, warmup), oneReplica: () => drain(1, { n, warmup }) },
      SIZES.pairs,
      settle,
    );
    results.overhead = {
      ...rounds,
      cpu: paired.compare(rounds, 'oneReplica', 'seedLoop', paired.cpuPerOrder),
      throughput: paired.compare(rounds, 'oneReplica', 'seedLoop', paired.throughput),
    };
  }
  if (lever) {
    const { n, warmup } = SIZES.realistic;
    const instant = SIZES.overhead;
    const rounds = await paired.inRounds(
      against ? `this build against ${against}` : `lever ${JSON.stringify(lever)}${leverSql ? ` ${leverSql}` : ''}`,
      {
        ...(leverSinks.includes('realistic') && {
          realisticBase: () => realistic.daemons(1, n, warmup, {}, againstCli),
          realisticLever: () => realistic.daemons(1, n, warmup, lever, undefined, leverSql),
        }),
        ...(leverSinks.includes('instant') && {
          instantBase: () => drain(1, { ...instant, cli: againstCli }),
          instantLever: () => drain(1, { ...instant, env: lever, sql: leverSql }),
        }),
      },
      SIZES.pairs,
      settle,
    );
    results.lever = {
      ...rounds,
      env: lever,
      sql: leverSql,
      against,
      ...(rounds.runs.realisticBase && {
        realisticCpu: paired.compare(rounds, 'realisticLever', 'realisticBase', paired.cpuPerOrder),
        realisticRate: paired.compare(rounds, 'realisticLever', 'realisticBase', realistic.sustainedRate),
      }),
      ...(rounds.runs.instantBase && {
        instantCpu: paired.compare(rounds, 'instantLever', 'instantBase', paired.cpuPerOrder),
        instantRate: paired.compare(rounds, 'instantLever', 'instantBase', paired.throughput),
        instantUpdates: { base: meanUpdates(rounds.runs.instantBase), lever: meanUpdates(rounds.runs.instantLever) },
      }),
    };
  }
  if (runs('realistic')) {
    const { n, warmup } = SIZES.realistic;
    const rounds = await paired.inRounds(
      `realistic partners (${n} orders, ${realistic.REALISTIC.origins} origins)`,
      {
        seedLoop: () => realistic.seedLoop(1, n, warmup),
        oneReplica: () => realistic.daemons(1, n, warmup),
        fourReplicas: () => realistic.daemons(4, n, warmup),
      },
      SIZES.pairs,
      settle,
    );
    results.realistic = {
      ...rounds,
      settings: realistic.REALISTIC,
      littleShare: Object.fromEntries(
        Object.keys(rounds.runs).map((name) => [name, paired.summarise(rounds, name, realistic.shareOfLittleBound)]),
      ),
      oneReplicaVsSeedLoop: paired.compare(rounds, 'oneReplica', 'seedLoop', realistic.sustainedRate),
      fourVsOneReplica: paired.compare(rounds, 'fourReplicas', 'oneReplica', realistic.sustainedRate),
    };
  }
  if (runs('scaling')) {
    // Replicas and shards under realistic partners: what a fleet gains from each, and what each component
    // costs per order, to size one. On one machine the replicas share its cores with Postgres and Redis.
    const { n, warmup } = SIZES.realistic;
    const rounds = await paired.inRounds(
      `scaling (${n} orders, realistic partners)`,
      {
        oneReplica: () => realistic.daemons(1, n, warmup),
        twoReplicas: () => realistic.daemons(2, n, warmup),
        fourReplicas: () => realistic.daemons(4, n, warmup),
        fourReplicasFourShards: () => realistic.daemons(4, n, warmup, { QUEUE_SHARDS: '4' }),
      },
      SIZES.pairs,
      settle,
    );
    results.scaling = {
      ...rounds,
      twoVsOne: paired.compare(rounds, 'twoReplicas', 'oneReplica', realistic.sustainedRate),
      fourVsOne: paired.compare(rounds, 'fourReplicas', 'oneReplica', realistic.sustainedRate),
      fourShardsVsOne: paired.compare(rounds, 'fourReplicasFourShards', 'fourReplicas', realistic.sustainedRate),
    };
  }
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
      oneReplica: await twice('order-callbacks, 1 replica', () => drain(1, { n: N, warmup: SIZES.warmup })),
      twoReplicas: await twice('order-callbacks, 2 replicas', () => drain(2, { n: N, warmup: SIZES.warmup })),
    };
  }
  if (runs('pickup')) {
    const rounds = await paired.inRounds(
      `pickup latency (${SIZES.latencySeconds} s at ${SIZES.latencyRates.join(' and ')}/s)`,
      Object.fromEntries(SIZES.latencyRates.map((rate) => [`at${rate}`, () => pickupLatency(rate, SIZES.latencySeconds, daemonEnv)])),
      SIZES.pairs,
      settle,
    );
    const percentiles = (rate) =>
      Object.fromEntries(['p50', 'p95', 'p99'].map((p) => [p, paired.summarise(rounds, `at${rate}`, (run) => run[p])]));
    results.pickup = { ...rounds, percentiles: Object.fromEntries(SIZES.latencyRates.map((rate) => [rate, percentiles(rate)])) };
  }
  if (runs('backlog')) {
    const measured = await twice(`backlog of ${SIZES.backlog}`, () => backlog(SIZES.backlog, daemonEnv));
    // Both runs' seconds together: the last quarter's typical second over the first's, with its interval.
    // The median: a second with one slow page (a checkpoint, the first pages of a cold start) weighs as
    // much as a busy one in a mean of seconds, and a few of them decide nothing about flat pages.
    const pageMeanRatio = ratioOfMeans(
      measured.runs.flatMap((run) => run.pageMeansLastQuarter),
      measured.runs.flatMap((run) => run.pageMeansFirstQuarter),
      { statistic: median },
    );
    results.backlog = { ...measured, pageMeanRatio };
  }
  if (runs('isolation')) {
    const rounds = await paired.inRounds(
      `isolation (${SIZES.isolation.healthy} healthy, ${SIZES.isolation.bad} to a partner that never answers)`,
      { healthyAlone: () => isolation(false), healthyBesideBad: () => isolation(true) },
      SIZES.pairs,
      settle,
    );
    results.isolation = { ...rounds, besideBadVsAlone: paired.compare(rounds, 'healthyBesideBad', 'healthyAlone', paired.drainSeconds) };
  }

  if (runs('partners')) {
    const n = SIZES.partners;
    const healthyOfMixed = mixedHealthy(n);
    const rounds = await paired.inRounds(
      `partners: all-healthy and 1 order in 4 failing its first try (${n})`,
      { healthy: () => partnerDrain({}, n, n), flaky: () => partnerDrain({ flaky: true }, n, n) },
      SIZES.pairs,
      settle,
    );
    const allowance = (run) => FLAKY_ALLOWANCE * run.seconds + RETRY_DELAY_SECONDS;
    results.partners = {
      ...rounds,
      flakyVsHealthy: paired.compare(rounds, 'flaky', 'healthy', paired.drainSeconds),
      flakyVsAllowance: paired.compare(rounds, 'flaky', 'healthy', paired.drainSeconds, allowance),
      // Not a goal, and three minutes a run: one run each, back to back.
      healthyOfMixedSize: await once(`partners: all-healthy partner (${healthyOfMixed})`, () =>
        partnerDrain({}, healthyOfMixed, healthyOfMixed),
      ),
      mixed: await once(`partners: mixed outcomes (${n}, ${healthyOfMixed} healthy)`, () =>
        partnerDrain({ mixed: true }, n, healthyOfMixed),
      ),
      healthyOfMixed,
      allowanceFactor: FLAKY_ALLOWANCE,
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
  if (publish) publishReport(results);
  console.log(`written: ${path.relative(process.cwd(), file)}${publish ? ', BENCHMARKS.md, bench/baseline.json' : ''}`);
  await closeOwnRedis();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${err.stack || err.message}`);
    process.exit(1);
  },
);
