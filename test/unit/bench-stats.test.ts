// The bench's decision rule: paired ratios, their bootstrap interval, and when a difference is called.
const stats = require('../../bench/stats');

describe('bench statistics', () => {
  test('the geometric mean of ratios is symmetric: A/B and B/A give reciprocal figures', () => {
    const pairs = [
      [1.2, 1],
      [0.9, 1],
      [1.1, 1],
    ];
    const ab = stats.compareRatios(pairs);
    const ba = stats.compareRatios(pairs.map(([a, b]) => [b, a]));
    expect(ab.ratio * ba.ratio).toBeCloseTo(1, 12);
    expect(ab.ratio).toBeCloseTo(Math.cbrt(1.2 * 0.9 * 1.1), 12);
  });

  test('the same pairs always give the same interval (seeded resampling)', () => {
    const pairs = Array.from({ length: 12 }, (_, i) => [1 + (i % 5) / 50, 1]);
    expect(stats.compareRatios(pairs)).toEqual(stats.compareRatios(pairs));
  });

  test('the interval holds the ratio and narrows as pairs agree', () => {
    const noisy = stats.compareRatios(Array.from({ length: 16 }, (_, i) => [1 + (i % 2 ? 0.2 : -0.2), 1]));
    const calm = stats.compareRatios(Array.from({ length: 16 }, (_, i) => [1 + (i % 2 ? 0.02 : -0.02), 1]));
    for (const r of [noisy, calm]) {
      expect(r.low).toBeLessThanOrEqual(r.ratio);
      expect(r.high).toBeGreaterThanOrEqual(r.ratio);
    }
    expect(calm.high - calm.low).toBeLessThan((noisy.high - noisy.low) / 5);
  });

  test.each([
    [{ low: 0.8, high: 0.96 }, 'lower'],
    [{ low: 1.04, high: 1.3 }, 'higher'],
    [{ low: 0.98, high: 1.02 }, 'level'],
    [{ low: 0.95, high: 1.01 }, 'undecided'],
    [{ low: 0.99, high: 1.05 }, 'undecided'],
    [{ low: NaN, high: NaN }, 'undecided'],
  ])('an interval %j says %s', (interval, expected) => {
    expect(stats.verdict(interval)).toBe(expected);
  });

  test('a clear 2× difference over 4 pairs is called; pairs with a missing value are left out', () => {
    const r = stats.compareRatios([
      [2.1, 1],
      [1.9, 1],
      [2.0, 1],
      [2.05, 1],
      [NaN, 1],
      [1, 0],
    ]);
    expect(r.pairs).toBe(4);
    expect(r.verdict).toBe('higher');
    expect(r.low).toBeGreaterThan(1.85);
  });

  test('rounds alternate their order, so two scenarios run ABBA', () => {
    expect(stats.roundOrders(['a', 'b'], 4)).toEqual([
      ['a', 'b'],
      ['b', 'a'],
      ['a', 'b'],
      ['b', 'a'],
    ]);
    expect(stats.roundOrders(['x', 'y', 'z'], 2)).toEqual([
      ['x', 'y', 'z'],
      ['z', 'y', 'x'],
    ]);
  });

  test('a ratio of two sets of samples keeps each set apart when it resamples', () => {
    const first = [10, 11, 9, 10, 10.5, 9.5, NaN];
    const last = [12, 13, 11, 12, 12.5, 11.5];
    const r = stats.ratioOfMeans(last, first);
    expect(r.samples).toEqual([6, 6]);
    expect(r.ratio).toBeCloseTo(1.2, 12);
    expect(r.low).toBeGreaterThan(1.1);
    expect(r.high).toBeLessThan(1.3);
    expect(stats.ratioOfMeans(last, first)).toEqual(r);
    expect(stats.ratioOfMeans([], first).ratio).toBeNaN();
  });

  test('a ratio of medians is not moved by a few slow seconds, where a ratio of means is', () => {
    const first = [16, 15, 17, 16, 15, 17, 16, 15, 17, 741];
    const last = [17, 16, 18, 17, 16, 18, 17, 16, 18, 17];
    expect(stats.median([3, 1, 2])).toBe(2);
    expect(stats.median([4, 1, 3, 2])).toBe(2.5);
    const medians = stats.ratioOfMeans(last, first, { statistic: stats.median });
    expect(medians.ratio).toBeCloseTo(17 / 16, 12);
    expect(medians.high).toBeLessThan(1.25);
    expect(stats.ratioOfMeans(last, first).ratio).toBeLessThan(0.5);
  });

  test('the mean of repeated figures comes with an interval around it', () => {
    const r = stats.meanWithInterval([0.9, 0.92, 0.88, 0.91, NaN]);
    expect(r.n).toBe(4);
    expect(r.mean).toBeCloseTo(0.9025, 10);
    expect(r.low).toBeGreaterThanOrEqual(0.88);
    expect(r.high).toBeLessThanOrEqual(0.92);
  });
});
