'use strict';
// Turns a bench run into the printed table and BENCHMARKS.md. Pure: results in, text out.

const MB = 1024 * 1024;
const fixed = (value, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
const ratio = (value, of) => (Number.isFinite(value) && of > 0 ? `${(value / of).toFixed(2)}×` : 'n/a');
const row = (cells) => `| ${cells.join(' | ')} |`;

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
    row(['scenario', 'N', 'orders/s', '÷ signed POSTs', '÷ updates 1/stmt', '÷ BullMQ alone', '÷ best peer', 'CPU-s per 1k (machine)', 'daemon peak RSS']),
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
    ['ceiling: BullMQ alone (the Worker\'s part)', results.ceilings?.bullmq],
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
      return row([name, cell(by.bench), cell(by.daemons), cell(by.sink), cell(by.postgres), cell(by.redis), cell(by.rest), fixed(r.cpuSecondsPer1k, 2)]);
    }),
  ].join('\n');
}

function pickupTable(results) {
  if (!results.pickup) return undefined;
  const rates = Object.keys(results.pickup);
  return [
    row(['pickup latency (commit of 5 → callback at the sink)', 'p50', 'p95', 'p99']),
    row(['---', '---', '---', '---']),
    ...rates.map((rate) => {
      const r = results.pickup[rate];
      return row([`${rate} orders/s for ${results.sizes.latencySeconds} s`, `${fixed(r.p50, 1)} ms`, `${fixed(r.p95, 1)} ms`, `${fixed(r.p99, 1)} ms`]);
    }),
  ].join('\n');
}

function backlogTable(results) {
  const b = results.backlog;
  if (!b) return undefined;
  return [
    row([`backlog: ${results.sizes.backlog} orders at 5 before start, 1 replica`, '']),
    row(['---', '---']),
    row(['drain time', `${fixed(b.seconds, 1)} s (${fixed(b.ordersPerSecond)} orders/s, ${fixed(b.cpuSecondsPer1k, 2)} CPU-s per 1k)`]),
    row(['Redis used_memory: peak growth over the run (peak absolute)', `${fixed((b.peakRedisUsedMemory - b.redisUsedMemoryBefore) / MB, 1)} MB (${fixed(b.peakRedisUsedMemory / MB, 1)} MB)`]),
    row(['Redis keys: peak growth (peak absolute)', `${fixed(b.peakRedisKeys - b.redisKeysBefore)} (${fixed(b.peakRedisKeys)})`]),
    row(['producer page p99: whole run / first quarter / last quarter', `≤ ${fixed(b.pageP99 * 1000, 1)} / ${fixed(b.pageP99FirstQuarter * 1000, 1)} / ${fixed(b.pageP99LastQuarter * 1000, 1)} ms (histogram bucket bounds)`]),
    row(['producer page mean: first quarter / last quarter', `${fixed(b.pageMeanFirstQuarter * 1000, 1)} / ${fixed(b.pageMeanLastQuarter * 1000, 1)} ms`]),
    row(['daemon peak RSS', `${fixed(b.peakDaemonRss / MB)} MB (every second of the run: the JSON)`]),
  ].join('\n');
}

function isolationTable(results) {
  if (!results.isolation) return undefined;
  const { healthyAlone, healthyBesideBad } = results.isolation;
  const { healthy, bad } = results.sizes.isolation;
  return [
    row(['partner isolation (2 replicas)', 'healthy drain time']),
    row(['---', '---']),
    row([`healthy partner alone (${healthy})`, `${fixed(healthyAlone.seconds, 2)} s`]),
    row([`beside a partner that never answers (${bad})`, `${fixed(healthyBesideBad.seconds, 2)} s (${ratio(healthyBesideBad.seconds, healthyAlone.seconds)}; goal ≤ 1.5×)`]),
  ].join('\n');
}

function partnersTable(results) {
  if (!results.partners) return undefined;
  const { healthy, flaky, healthyOfMixedSize, mixed, healthyOfMixed, retryDelaySeconds } = results.partners;
  const n = results.sizes.partners;
  return [
    row(['partner behaviour (2 replicas)', 'drain time', 'vs all-healthy']),
    row(['---', '---', '---']),
    row([`all-healthy (${n})`, `${fixed(healthy.seconds, 2)} s`, '']),
    row([`1 order in 4 fails its first try (${n})`, `${fixed(flaky.seconds, 2)} s`, `${ratio(flaky.seconds, healthy.seconds)} (goal ≤ 1.5× + ${retryDelaySeconds} s retry delay)`]),
    row([`all-healthy (${healthyOfMixed})`, `${fixed(healthyOfMixedSize.seconds, 2)} s`, '']),
    row([`mixed outcomes: its ${healthyOfMixed} healthy orders of ${n} (the rest 410, 404, 500, 302, no answer)`, `${fixed(mixed.seconds, 2)} s`, ratio(mixed.seconds, healthyOfMixedSize.seconds)]),
  ].join('\n');
}

function renderReport(results) {
  // A partial run (--only) has some sections: the tables of the others are left out.
  const table = [throughputTable(results), cpuTable(results), pickupTable(results), backlogTable(results), isolationTable(results), partnersTable(results)].filter(Boolean).join('\n\n');
  const m = results.machine;
  const markdown =
    '# Benchmarks\n\n' +
    `Last run: ${results.at}, \`${results.command}\`, on ${m.cores} cores (${m.cpu}), Node ${m.node}, ${m.postgres}, ${m.redis}.\n` +
    'Everything on one machine over loopback, so every process shares the same cores; each figure is the\n' +
    'median of two runs (their mean). CPU-seconds are the whole machine\'s (daemon, Postgres, Redis, sink),\n' +
    'then split by process; `rest` is busy time no listed process accounts for (processes that came and\n' +
    'went, steal time, anything else running).\n' +
    'Raw results, with both runs and the backlog\'s samples: bench/results/.\n\n' +
    `${table}\n\n` +
    'What each row does: see "Benchmark" in the README. Goals (issue 5): order-callbacks at 1.5× the best\n' +
    'queue-based peer and ahead of the seed loop; p99 pickup < 50 ms at 500/s; the backlog drains with Redis\n' +
    'under 64 MB and pages that cost the same at the end as at the start; 2 replicas not slower than 1.\n';
  return { table, markdown };
}

module.exports = { renderReport };
