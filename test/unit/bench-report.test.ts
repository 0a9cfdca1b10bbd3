// The bench's goal rows: what each section's rounds say about its goal, and old results that cannot say.
const paired = require('../../bench/paired');
const report = require('../../bench/report');
const { ratioOfMeans } = require('../../bench/stats');

const MB = 1024 * 1024;

/** Rounds of named scenarios from their drain times, as paired.inRounds answers them. */
function rounds(seconds: Record<string, number[]>) {
  const runs = Object.fromEntries(Object.entries(seconds).map(([name, values]) => [name, values.map((s) => ({ seconds: s }))]));
  const count = Object.values(seconds)[0].length;
  return { rounds: count, orders: [], runs };
}

function pickup(p99At500: number[], p99At2000: number[]) {
  const latencies = (p99s: number[]) => p99s.map((p99) => ({ p50: p99 / 2, p95: p99, p99 }));
  const measured = { rounds: p99At500.length, orders: [], runs: { at500: latencies(p99At500), at2000: latencies(p99At2000) } };
  const percentiles = (name: string) =>
    Object.fromEntries(['p50', 'p95', 'p99'].map((p) => [p, paired.summarise(measured, name, (run: Record<string, number>) => run[p])]));
  return { ...measured, percentiles: { 500: percentiles('at500'), 2000: percentiles('at2000') } };
}

const base = {
  at: '2026-12-06T00:00:00.000Z',
  command: 'npm run bench -- --only isolation,partners,pickup,backlog',
  machine: { cores: 2, cpu: 'test', node: 'v20', postgres: 'pg', redis: 'redis' },
  sizes: { isolation: { healthy: 100, bad: 100 }, partners: 100, latencySeconds: 3, backlog: 1000 },
};

function results() {
  const isolation = rounds({ healthyAlone: [10, 10.2, 9.8, 10.1], healthyBesideBad: [12, 12.4, 11.6, 12.1] });
  const partners = rounds({ healthy: [9, 9.2, 8.8, 9.1], flaky: [20, 21, 19, 20.5] });
  return {
    ...base,
    isolation: { ...isolation, besideBadVsAlone: paired.compare(isolation, 'healthyBesideBad', 'healthyAlone', paired.drainSeconds) },
    partners: {
      ...partners,
      flakyVsHealthy: paired.compare(partners, 'flaky', 'healthy', paired.drainSeconds),
      flakyVsAllowance: paired.compare(
        partners,
        'flaky',
        'healthy',
        paired.drainSeconds,
        (run: { seconds: number }) => 1.5 * run.seconds + 1,
      ),
      healthyOfMixedSize: { seconds: 5 },
      mixed: { seconds: 180 },
      healthyOfMixed: 50,
      allowanceFactor: 1.5,
      retryDelaySeconds: 1,
    },
    pickup: pickup([20, 22, 21, 19], [90, 130, 80, 120]),
    backlog: {
      seconds: 10,
      peakRedisUsedMemory: 70 * MB,
      redisUsedMemoryBefore: 2 * MB,
      pageMeanFirstQuarter: 0.015,
      pageMeanLastQuarter: 0.016,
      pageMeanRatio: ratioOfMeans([0.016, 0.015, 0.017], [0.015, 0.014, 0.016]),
    },
  };
}

/** The measured and verdict cells of the goal rows whose goal starts with `number`. */
function goal(table: string, number: string) {
  return table
    .split('\n')
    .filter((line) => line.startsWith(`| ${number} `))
    .map((line) => line.slice(2, -2).split(' | ').slice(1));
}

describe('bench goal verdicts', () => {
  test.each([
    ['atMost', 0.9, 1.0, 1, 'met'],
    ['atMost', 1.01, 1.2, 1, 'not met'],
    ['atMost', 0.95, 1.05, 1, 'undecided'],
    ['below', 40, 49.9, 50, 'met'],
    ['below', 40, 50, 50, 'undecided'],
    ['below', 50, 60, 50, 'not met'],
    ['atLeast', 0.85, 0.9, 0.85, 'met'],
    ['atLeast', 0.7, 0.84, 0.85, 'not met'],
  ])('%s: the interval [%p, %p] against %p says %s', (verdict, low, high, limit, expected) => {
    expect(report[verdict](low, high, limit)).toBe(expected);
  });

  test('goals 3, 4, 5a and 5b are decided from their intervals', () => {
    const { table } = report.renderReport(results());
    const [[isolation, isolationVerdict]] = goal(table, '5b.');
    expect(isolation).toMatch(/^1\.20× \[1\.\d\d, 1\.\d\d\], 4 rounds$/);
    expect(isolationVerdict).toBe('met');
    // 20 s against 1.5 × 9 s + 1 s = 14.5 s in every round.
    expect(goal(table, '3.')).toEqual([[expect.stringMatching(/÷ allowance 1\.38× .*; 4 rounds$/), 'not met']]);
    const pickupRows = goal(table, '4.');
    expect(pickupRows[0]).toEqual([expect.stringMatching(/^20\.5 \[\S+, \S+\] ms, 4 rounds$/), 'met']);
    expect(pickupRows[1][1]).toBe('undecided');
    // Redis grew 68 MB: not met, however flat the pages.
    expect(goal(table, '5a.')).toEqual([[expect.stringMatching(/^\+68\.0 MB; .* 1\.07× \[/), 'not met']]);
  });

  test('sections measured before they ran in rounds are not decided, and their tables are left out', () => {
    const old = {
      ...base,
      isolation: { healthyAlone: { seconds: 7.5 }, healthyBesideBad: { seconds: 18.7 } },
      partners: { healthy: { seconds: 9 }, flaky: { seconds: 15 }, retryDelaySeconds: 1 },
      pickup: { 500: { p50: 28, p95: 60, p99: 90 }, 2000: { p50: 2680, p95: 5100, p99: 5361 } },
    };
    const { table } = report.renderReport(old);
    for (const number of ['3.', '4.', '5b.']) {
      for (const cells of goal(table, number)) expect(cells).toEqual(['an older run, without an interval', 'measure again']);
    }
    expect(goal(table, '5a.')).toEqual([['not in this run', 'not in this run']]);
    expect(table).not.toMatch(/partner isolation|partner behaviour|pickup latency/);
  });
});
