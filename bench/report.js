'use strict';
// Turns a bench run into the printed table and BENCHMARKS.md. Pure: results in, text out.

const MB = 1024 * 1024;
const fixed = (value, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
const ratio = (value, of) => (Number.isFinite(value) && of > 0 ? `${(value / of).toFixed(2)}×` : 'n/a');
const row = (cells) => `| ${cells.join(' | ')} |`;
const percent = (value) => (Number.isFinite(value) ? `${(value * 100).toFixed(0)} %` : 'n/a');
/** A paired comparison: geometric mean of the ratios, its 95 % interval, the number of pairs and the verdict. */
const compared = (c) => `${fixed(c.ratio, 2)}× [${fixed(c.low, 2)}, ${fixed(c.high, 2)}], ${c.pairs} pairs: ${c.verdict}`;
/** A ratio held against a goal: its estimate and 95 % interval. */
const span = (r) => `${fixed(r.ratio, 2)}× [${fixed(r.low, 2)}, ${fixed(r.high, 2)}]`;
/** A paired ratio held against a goal, over its rounds. */
const ratioOver = (c) => `${span(c)}, ${c.pairs} rounds`;
/** A repeated figure: its mean and 95 % interval. */
const meanOf = (m, show) => `${show(m.mean)} [${show(m.low)}, ${show(m.high)}]`;
const ms = (m) => `${meanOf(m, (value) => fixed(value, 1))} ms`;
const seconds = (value) => `${fixed(value, 2)} s`;
/**
 * A section measured in rounds, or undefined: results written before it ran in rounds (an older
 * bench/baseline.json) have no interval to decide a goal from, and their tables are left out.
 */
const inRounds = (section) => (Number.isInteger(section?.rounds) ? section : undefined);
/** A goal's measured and verdict cells when its section is missing: not run, or run before it had an interval. */
const missing = (section) => (section ? ['an older run, without an interval', 'measure again'] : ['not in this run', 'not in this run']);
const average = (values) => values.reduce((sum, v) => sum + v, 0) / values.length;
/** The share of the machine's cores a run kept busy. */
const busy = (run, cores) => ((run.cpuSecondsPer1k / 1000) * run.ordersPerSecond) / cores;

function throughputTable(results) {
  const { N } = results.sizes;
  const c = results.ceilings ?? {};
  const peers = results.peers ?? {};
  const ours = results.orderCallbacks ?? {};
  const bestPeer = Math.max(peers.seedLoop?.ordersPerSecond ?? NaN, peers.bullmqPlain?.ordersPerSecond ?? NaN);
  const line = (name, r, { compare = true } = {}) =>
    r &&
    row([
      name,
      N,
      fixed(r.ordersPerSecond),
      compare ? ratio(r.ordersPerSecond, c.signedPosts?.ordersPerSecond) : '',
      compare ? ratio(r.ordersPerSecond, c.updatesOne?.ordersPerSecond) : '',
      compare ? ratio(r.ordersPerSecond, c.bullmq?.ordersPerSecond) : '',
      compare ? ratio(r.ordersPerSecond, bestPeer) : '',
      fixed(r.cpuSecondsPer1k, 2),
      r.peakDaemonRss ? `${fixed(r.peakDaemonRss / MB)} MB` : '',
    ]);
  const lines = [
    line('ceiling: raw signed POSTs (concurrency 64)', c.signedPosts, { compare: false }),
    line('ceiling: conditional updates, 1 per statement', c.updatesOne, { compare: false }),
    line('ceiling: conditional updates, 100 per statement', c.updatesHundred, { compare: false }),
    c.bullmq && line(`ceiling: BullMQ alone, no-op jobs (adds: ${fixed(c.bullmq.addsPerSecond)}/s)`, c.bullmq, { compare: false }),
    line('peer: seed-loop', peers.seedLoop),
    line('peer: bullmq-plain', peers.bullmqPlain),
    line('order-callbacks, 1 replica', ours.oneReplica),
    line('order-callbacks, 2 replicas', ours.twoReplicas),
  ].filter(Boolean);
  if (lines.length === 0) return undefined;
  return [
    row([
      'scenario',
      'N',
      'orders/s',
      '÷ signed POSTs',
      '÷ updates 1/stmt',
      '÷ BullMQ alone',
      '÷ best peer',
      'CPU-s per 1k (machine)',
      'daemon peak RSS',
    ]),
    row(Array(9).fill('---')),
    ...lines,
  ].join('\n');
}

/** The throughput rows again, their machine CPU split by process: where an order's cost goes. */
function cpuTable(results) {
  const scenarios = [
    ['ceiling: raw signed POSTs', results.ceilings?.signedPosts],
    ['ceiling: conditional updates, 1 per statement', results.ceilings?.updatesOne],
    ['ceiling: conditional updates, 100 per statement', results.ceilings?.updatesHundred],
    ["ceiling: BullMQ alone (the Worker's part)", results.ceilings?.bullmq],
    ['peer: seed-loop', results.peers?.seedLoop],
    ['peer: bullmq-plain', results.peers?.bullmqPlain],
    ['order-callbacks, 1 replica', results.orderCallbacks?.oneReplica],
    ['order-callbacks, 2 replicas', results.orderCallbacks?.twoReplicas],
  ].filter(([, r]) => r?.cpuSecondsPer1kBy);
  if (scenarios.length === 0) return undefined;
  // Empty: no such process in the scenario (no daemon for a peer); a measured 0 shows as 0.00.
  const cell = (value) => (value === undefined ? '' : fixed(value, 2));
  return [
    row(['CPU-s per 1k orders, by process', 'bench process (peers, ceilings)', 'daemons', 'sink', 'Postgres', 'Redis', 'rest', 'machine']),
    row(Array(8).fill('---')),
    ...scenarios.map(([name, r]) => {
      const by = r.cpuSecondsPer1kBy;
      return row([
        name,
        cell(by.bench),
        cell(by.daemons),
        cell(by.sink),
        cell(by.postgres),
        cell(by.redis),
        cell(by.rest),
        fixed(r.cpuSecondsPer1k, 2),
      ]);
    }),
  ].join('\n');
}

function pickupTable(results) {
  const p = inRounds(results.pickup);
  if (!p) return undefined;
  return [
    row([`pickup latency (commit of 5 → callback at the sink), ${p.rounds} rounds (mean [95 %])`, 'p50', 'p95', 'p99']),
    row(['---', '---', '---', '---']),
    ...Object.entries(p.percentiles).map(([rate, at]) =>
      row([`${rate} orders/s for ${results.sizes.latencySeconds} s`, ms(at.p50), ms(at.p95), ms(at.p99)]),
    ),
  ].join('\n');
}

function backlogTable(results) {
  const b = results.backlog;
  if (!b) return undefined;
  return [
    row([`backlog: ${results.sizes.backlog} orders at 5 before start, 1 replica`, '']),
    row(['---', '---']),
    row(['drain time', `${fixed(b.seconds, 1)} s (${fixed(b.ordersPerSecond)} orders/s, ${fixed(b.cpuSecondsPer1k, 2)} CPU-s per 1k)`]),
    row([
      'Redis used_memory: peak growth over the run (peak absolute)',
      `${fixed((b.peakRedisUsedMemory - b.redisUsedMemoryBefore) / MB, 1)} MB (${fixed(b.peakRedisUsedMemory / MB, 1)} MB)`,
    ]),
    row(['Redis keys: peak growth (peak absolute)', `${fixed(b.peakRedisKeys - b.redisKeysBefore)} (${fixed(b.peakRedisKeys)})`]),
    row([
      'producer page p99: whole run / first quarter / last quarter',
      `≤ ${fixed(b.pageP99 * 1000, 1)} / ${fixed(b.pageP99FirstQuarter * 1000, 1)} / ${fixed(b.pageP99LastQuarter * 1000, 1)} ms (histogram bucket bounds)`,
    ]),
    row([
      'producer page mean: first quarter / last quarter',
      `${fixed(b.pageMeanFirstQuarter * 1000, 1)} / ${fixed(b.pageMeanLastQuarter * 1000, 1)} ms`,
    ]),
    b.pageMeanRatio &&
      row([
        'producer page cost, last quarter ÷ first (the median second, of the mean page in each [95 %])',
        `${span(b.pageMeanRatio)} (seconds with pages read: ${b.pageMeanRatio.samples[1]} first, ${b.pageMeanRatio.samples[0]} last)`,
      ]),
    row(['daemon peak RSS', `${fixed(b.peakDaemonRss / MB)} MB (every second of the run: the JSON)`]),
  ]
    .filter(Boolean)
    .join('\n');
}

function isolationTable(results) {
  const i = inRounds(results.isolation);
  if (!i) return undefined;
  const { healthy, bad } = results.sizes.isolation;
  const mean = (name) => seconds(average(i.runs[name].map((run) => run.seconds)));
  return [
    row([`partner isolation (2 replicas), ${i.rounds} rounds`, 'healthy drain time (mean)']),
    row(['---', '---']),
    row([`healthy partner alone (${healthy})`, mean('healthyAlone')]),
    row([`beside a partner that never answers (${bad})`, mean('healthyBesideBad')]),
    row(['beside ÷ alone, per round (goal ≤ 1.5×)', ratioOver(i.besideBadVsAlone)]),
  ].join('\n');
}

function partnersTable(results) {
  const p = inRounds(results.partners);
  if (!p) return undefined;
  const { healthyOfMixedSize, mixed, healthyOfMixed, allowanceFactor, retryDelaySeconds } = p;
  const n = results.sizes.partners;
  const mean = (name) => seconds(average(p.runs[name].map((run) => run.seconds)));
  return [
    row(['partner behaviour (2 replicas)', 'drain time', 'vs all-healthy']),
    row(['---', '---', '---']),
    row([`all-healthy (${n}), ${p.rounds} rounds`, mean('healthy'), '']),
    row([`1 order in 4 fails its first try (${n}), ${p.rounds} rounds`, mean('flaky'), ratioOver(p.flakyVsHealthy)]),
    row([
      `the same ÷ its allowance, ${allowanceFactor} × all-healthy + ${retryDelaySeconds} s retry delay (goal ≤ 1)`,
      '',
      ratioOver(p.flakyVsAllowance),
    ]),
    row([`all-healthy (${healthyOfMixed}), one run`, seconds(healthyOfMixedSize.seconds), '']),
    row([
      `mixed outcomes, one run: its ${healthyOfMixed} healthy orders of ${n} (the rest 410, 404, 500, 302, no answer)`,
      seconds(mixed.seconds),
      ratio(mixed.seconds, healthyOfMixedSize.seconds),
    ]),
  ].join('\n');
}

const NAMES = {
  seedLoop: 'peer: seed-loop',
  oneReplica: 'order-callbacks, 1 replica',
  twoReplicas: 'order-callbacks, 2 replicas',
  fourReplicas: 'order-callbacks, 4 replicas',
  fourReplicasFourShards: 'order-callbacks, 4 replicas, 4 shards',
};

/** Overhead: the seed loop and one replica in rounds against an instant sink; CPU per order by process. */
function overheadTable(results) {
  const o = results.overhead;
  if (!o) return undefined;
  const by = (name, key) => fixed(average(o.runs[name].map((r) => r.cpuSecondsPer1kBy[key] ?? 0)), 2);
  return [
    row([
      `overhead: ${results.sizes.overhead.n} orders, instant sink, ${o.rounds} rounds (mean of each)`,
      'CPU-s per 1k (machine)',
      'bench process',
      'daemons',
      'sink',
      'Postgres',
      'Redis',
      'orders/s',
    ]),
    row(Array(8).fill('---')),
    ...['seedLoop', 'oneReplica'].map((name) =>
      row([
        NAMES[name],
        fixed(average(o.runs[name].map((r) => r.cpuSecondsPer1k)), 2),
        by(name, 'bench'),
        by(name, 'daemons'),
        by(name, 'sink'),
        by(name, 'postgres'),
        by(name, 'redis'),
        fixed(average(o.runs[name].map((r) => r.ordersPerSecond))),
      ]),
    ),
    row(['1 replica ÷ seed loop, per pair', compared(o.cpu), '', '', '', '', '', compared(o.throughput)]),
  ].join('\n');
}

/** Realistic partners: each scenario's sustained rate against its Little's-law bound, and the ratios. */
function realisticTable(results) {
  const r = results.realistic;
  if (!r) return undefined;
  const { concurrency, origins, timeoutMs } = r.settings;
  const cores = results.machine.cores;
  const inFlight = { seedLoop: concurrency, oneReplica: concurrency, fourReplicas: 4 * concurrency };
  return [
    row([
      `realistic partners: ${results.sizes.realistic.n} orders over ${origins} origins, ${r.rounds} rounds`,
      'in flight',
      'sustained requests/s',
      "share of Little's-law bound [95 %]",
      'drain time',
      'CPU-s per 1k (machine)',
      'machine busy',
    ]),
    row(Array(7).fill('---')),
    ...Object.keys(r.runs).map((name) => {
      const runs = r.runs[name];
      return row([
        NAMES[name],
        inFlight[name],
        fixed(average(runs.map((run) => run.partner.sustained))),
        meanOf(r.littleShare[name], percent),
        `${fixed(average(runs.map((run) => run.seconds)), 1)} s`,
        fixed(average(runs.map((run) => run.cpuSecondsPer1k)), 2),
        percent(average(runs.map((run) => busy(run, cores)))),
      ]);
    }),
    row(['1 replica ÷ seed loop, sustained rate per round', '', compared(r.oneReplicaVsSeedLoop), '', '', '', '']),
    row(['4 replicas ÷ 1 replica, sustained rate per round', '', compared(r.fourVsOneReplica), '', '', '', '']),
    '',
    `Latency lognormal (median 40 ms, p99 400 ms), 1 request in 200 never answered; callback timeout ${timeoutMs / 1000} s.`,
  ].join('\n');
}

/** Replicas and shards under realistic partners: rates, their ratios, and CPU per order by component. */
function scalingTable(results) {
  const s = results.scaling;
  if (!s) return undefined;
  const cores = results.machine.cores;
  const by = (runs, key) => fixed(average(runs.map((run) => run.cpuSecondsPer1kBy[key] ?? 0)), 2);
  const shape = { oneReplica: [1, 1], twoReplicas: [2, 1], fourReplicas: [4, 1], fourReplicasFourShards: [4, 4] };
  return [
    row([
      `scaling: ${results.sizes.realistic.n} orders, realistic partners, ${s.rounds} rounds (mean of each)`,
      'replicas',
      'shards',
      'sustained requests/s',
      'CPU-s per 1k (machine)',
      'daemons',
      'Postgres',
      'Redis',
      'sink',
      'machine busy',
    ]),
    row(Array(10).fill('---')),
    ...Object.keys(s.runs).map((name) => {
      const runs = s.runs[name];
      return row([
        NAMES[name] ?? name,
        shape[name][0],
        shape[name][1],
        fixed(average(runs.map((run) => run.partner.sustained))),
        fixed(average(runs.map((run) => run.cpuSecondsPer1k)), 2),
        by(runs, 'daemons'),
        by(runs, 'postgres'),
        by(runs, 'redis'),
        by(runs, 'sink'),
        percent(average(runs.map((run) => busy(run, cores)))),
      ]);
    }),
    row(['2 replicas ÷ 1, sustained rate per round', '', '', compared(s.twoVsOne), '', '', '', '', '', '']),
    row(['4 replicas ÷ 1, sustained rate per round', '', '', compared(s.fourVsOne), '', '', '', '', '', '']),
    row(['4 shards ÷ 1 shard (4 replicas), sustained rate per round', '', '', compared(s.fourShardsVsOne), '', '', '', '', '', '']),
    '',
    `Each replica ${results.realistic?.settings.concurrency ?? 32} in flight; same partners as "realistic partners".`,
  ].join('\n');
}

/** A lever: one replica with its defaults against one with other settings, on both sinks. */
function leverTable(results) {
  const l = results.lever;
  if (!l) return undefined;
  const setting = [...Object.entries(l.env).map(([name, value]) => `${name}=${value}`), ...(l.sql ? [`\`${l.sql}\``] : [])].join(', ');
  const title = l.against ? `this build${setting ? ` with ${setting}` : ''} ÷ the build at ${l.against}` : `lever: ${setting} ÷ defaults`;
  return [
    row([`${title}, 1 replica, per round`, 'CPU-s per order', 'throughput']),
    row(['---', '---', '---']),
    l.realisticCpu &&
      row([
        `realistic partners (${results.sizes.realistic.n} orders; sustained rate)`,
        compared(l.realisticCpu),
        compared(l.realisticRate),
      ]),
    l.instantCpu && row([`instant sink (${results.sizes.overhead.n} orders)`, compared(l.instantCpu), compared(l.instantRate)]),
    l.instantUpdates &&
      row([
        'updates of orders per order, of them in place (HOT): defaults → lever',
        `${fixed(l.instantUpdates.base.perOrder, 2)} (${fixed(l.instantUpdates.base.inPlacePerOrder, 2)}) → ${fixed(l.instantUpdates.lever.perOrder, 2)} (${fixed(l.instantUpdates.lever.inPlacePerOrder, 2)})`,
        '',
      ]),
  ]
    .filter(Boolean)
    .join('\n');
}

const MET = { true: 'met', false: 'not met' };
/** met / not met / undecided for "the figure is at least `goal`", from its interval. */
const atLeast = (low, high, goal) => (low >= goal ? 'met' : high < goal ? 'not met' : 'undecided');
/** met / not met / undecided for "the figure is at most `goal`", from its interval. */
const atMost = (low, high, goal) => (high <= goal ? 'met' : low > goal ? 'not met' : 'undecided');
/** met / not met / undecided for "the figure is below `goal`", from its interval. */
const below = (low, high, goal) => (high < goal ? 'met' : low >= goal ? 'not met' : 'undecided');

/**
 * "While CPU allows": a scaling goal missed with the machine three-quarters busy or more says the box
 * ran out of cores, not that the replicas do not scale.
 */
const cpuBound = (verdict, runs, cores) =>
  verdict === 'met' || average(runs.map((run) => busy(run, cores))) < 0.75 ? verdict : `${verdict}: the machine ran out of CPU`;

/** Every goal of the benchmark issue, with what this run measured and whether it is met. */
function goalsTable(results) {
  const none = 'not in this run';
  const o = results.overhead;
  const r = results.realistic;
  const p = inRounds(results.partners);
  const pickup = inRounds(results.pickup);
  const b = results.backlog?.pageMeanRatio && results.backlog;
  const i = inRounds(results.isolation);
  const goals = [];
  goals.push([
    "1. Overhead: CPU per order, 1 replica ÷ seed loop ≤ 1.0, interval's upper end ≤ 1.1",
    o ? compared(o.cpu) : none,
    o ? MET[o.cpu.ratio <= 1 && o.cpu.high <= 1.1] : none,
  ]);
  goals.push([
    "2a. Realistic partners: 1 replica ≥ 85 % of its Little's-law bound",
    r ? meanOf(r.littleShare.oneReplica, percent) : none,
    r ? atLeast(r.littleShare.oneReplica.low, r.littleShare.oneReplica.high, 0.85) : none,
  ]);
  goals.push([
    '2b. Realistic partners: 4 replicas ≥ 3.4 × 1 replica while CPU allows',
    r
      ? `${compared(r.fourVsOneReplica)}; machine ${percent(average(r.runs.fourReplicas.map((run) => busy(run, results.machine.cores))))} busy`
      : none,
    r ? cpuBound(atLeast(r.fourVsOneReplica.low, r.fourVsOneReplica.high, 3.4), r.runs.fourReplicas, results.machine.cores) : none,
  ]);
  goals.push([
    '2c. Realistic partners: 1 replica ahead of the seed loop at the same concurrency',
    r ? compared(r.oneReplicaVsSeedLoop) : none,
    r ? MET[r.oneReplicaVsSeedLoop.verdict === 'higher'] : none,
  ]);
  goals.push([
    '3. Flaky partner: drain ≤ 1.5 × all-healthy + the retry delay',
    ...(p
      ? [
          `÷ all-healthy ${span(p.flakyVsHealthy)}; ÷ allowance ${span(p.flakyVsAllowance)}; ${p.flakyVsAllowance.pairs} rounds`,
          atMost(p.flakyVsAllowance.low, p.flakyVsAllowance.high, 1),
        ]
      : missing(results.partners)),
  ]);
  for (const [rate, limit] of [
    [500, 50],
    [2000, 100],
  ]) {
    const at = pickup?.percentiles[rate];
    goals.push([
      `4. Pickup: p99 < ${limit} ms at ${rate} orders/s`,
      ...(at ? [`${ms(at.p99)}, ${at.p99.n} rounds`, below(at.p99.low, at.p99.high, limit)] : missing(pickup ? undefined : results.pickup)),
    ]);
  }
  const grown = b && b.peakRedisUsedMemory - b.redisUsedMemoryBefore;
  goals.push([
    '5a. Backlog: Redis grows < 64 MB; pages cost the same at the end as at the start (median second within 1.25×)',
    ...(b
      ? [
          `+${fixed(grown / MB, 1)} MB; pages ${fixed(b.pageMeanFirstQuarter * 1000, 1)} → ${fixed(b.pageMeanLastQuarter * 1000, 1)} ms, ${span(b.pageMeanRatio)}`,
          grown >= 64 * MB ? 'not met' : atMost(b.pageMeanRatio.low, b.pageMeanRatio.high, 1.25),
        ]
      : missing(results.backlog)),
  ]);
  goals.push([
    '5b. Isolation: healthy partner beside a dead one ≤ 1.5 × alone',
    ...(i ? [ratioOver(i.besideBadVsAlone), atMost(i.besideBadVsAlone.low, i.besideBadVsAlone.high, 1.5)] : missing(results.isolation)),
  ]);
  const s = results.scaling;
  goals.push([
    '6. Scaling: throughput rises 1 → 2 → 4 replicas and 1 → 4 shards, CPU per order by component',
    s
      ? `2 ÷ 1 replica ${compared(s.twoVsOne)}; 4 ÷ 1 ${compared(s.fourVsOne)}; 4 shards ÷ 1 ${compared(s.fourShardsVsOne)}; machine ${percent(average(s.runs.fourReplicasFourShards.map((run) => busy(run, results.machine.cores))))} busy`
      : none,
    s
      ? cpuBound(
          MET[
            s.twoVsOne.verdict === 'higher' &&
              s.fourVsOne.verdict === 'higher' &&
              s.fourVsOne.ratio > s.twoVsOne.ratio &&
              s.fourShardsVsOne.verdict !== 'lower'
          ],
          s.runs.fourReplicasFourShards,
          results.machine.cores,
        )
      : none,
  ]);
  return [row(['goal', 'measured', 'verdict']), row(['---', '---', '---']), ...goals.map(row)].join('\n');
}

function renderReport(results) {
  // A partial run (--only) has some sections: the tables of the others are left out.
  const table = [
    results.lever ? undefined : goalsTable(results),
    leverTable(results),
    overheadTable(results),
    realisticTable(results),
    scalingTable(results),
    throughputTable(results),
    cpuTable(results),
    pickupTable(results),
    backlogTable(results),
    isolationTable(results),
    partnersTable(results),
  ]
    .filter(Boolean)
    .join('\n\n');
  const m = results.machine;
  const runs = (results.sources ?? [results])
    .map((run) => `${run.at}, \`${run.command}\`${run.build ? `, build ${run.build}` : ''}`)
    .join('; ');
  const markdown =
    '# Benchmarks\n\n' +
    `Runs: ${runs}; on ${m.cores} cores (${m.cpu}), Node ${m.node}, ${m.postgres}, ${m.redis}.\n\n` +
    'Everything on one machine over loopback, so every process shares the same cores. Comparisons are made\n' +
    'of rounds: each round runs every scenario once, back to back, from the same state (a fresh database, a\n' +
    "CHECKPOINT, the bench's own Redis flushed, the same N after a discarded warm-up), in alternating order\n" +
    '(ABBA). A ratio is the geometric mean of the per-round ratios, with its 95 % bootstrap interval; a\n' +
    'difference is called (higher, lower) only when the interval lies wholly past ±3 %, `level` when it lies\n' +
    'within ±3 %, `undecided` otherwise. A figure of a scenario in rounds (a drain time, a latency) is the\n' +
    'mean over the rounds, with its 95 % interval. The backlog runs twice; its page cost is the median second\n' +
    'of each quarter, with an interval over the seconds. Ceilings, peers and drain are the mean of two runs; the mixed-outcome\n' +
    "partner is one run. CPU-seconds are the whole machine's, then split by process; `rest` is busy time no\n" +
    'listed process accounts for.\n' +
    'What each section measures and how to run it: [Method](#method) and [Reproducing](#reproducing), below.\n\n' +
    `${table}\n`;
  return { table, markdown };
}

module.exports = { renderReport, atLeast, atMost, below };
