'use strict';
// How the bench decides "A vs B" from paired runs. Pure: numbers in, numbers out; the resampling is
// seeded, so the same runs always give the same interval.

/** A difference smaller than this either way is not called, however narrow the interval. */
const LEVEL = 0.03;
const RESAMPLES = 10_000;
const CONFIDENCE = 0.95;

/** mulberry32: a small seeded generator, uniform in [0, 1). */
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const mean = (values) => values.reduce((sum, v) => sum + v, 0) / values.length;
const geometricMean = (values) => Math.exp(mean(values.map(Math.log)));

/** The q-quantile (0..1) of sorted values, linear between ranks. */
function quantile(sorted, q) {
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  return sorted[low] + (sorted[Math.min(low + 1, sorted.length - 1)] - sorted[low]) * (at - low);
}

/** The middle `confidence` of `resamples` estimates, each drawn by `estimate(random)`. */
function percentileInterval(estimate, { resamples = RESAMPLES, confidence = CONFIDENCE, seed = 1 } = {}) {
  const random = seededRandom(seed);
  const estimates = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) estimates[r] = estimate(random);
  estimates.sort();
  const tail = (1 - confidence) / 2;
  return { low: quantile(estimates, tail), high: quantile(estimates, 1 - tail) };
}

/** Fills `sample` with draws, with replacement, from `values`. */
function resample(values, sample, random) {
  for (let i = 0; i < sample.length; i++) sample[i] = values[Math.floor(random() * values.length)];
  return sample;
}

/**
 * A percentile-bootstrap interval for `statistic` over `values`: resample the values with replacement,
 * `resamples` times, and take the middle `confidence` of the statistic's spread.
 */
function bootstrapInterval(values, statistic, options = {}) {
  if (values.length === 0) return { low: NaN, high: NaN };
  const sample = new Array(values.length);
  return percentileInterval((random) => statistic(resample(values, sample, random)), options);
}

/** The median of values (the mean of the middle two for an even count). */
function median(values) {
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length / 2;
  return sorted.length % 2 === 1 ? sorted[Math.floor(middle)] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * statistic(after) ÷ statistic(before) for two separate sets of samples (not pairs), the mean unless
 * told otherwise, with a bootstrap interval that resamples each set within itself, so every resample
 * keeps both sets' sizes.
 */
function ratioOfMeans(after, before, { statistic = mean, ...options } = {}) {
  const a = after.filter(Number.isFinite);
  const b = before.filter(Number.isFinite);
  const samples = [a.length, b.length];
  if (a.length === 0 || b.length === 0) return { ratio: NaN, low: NaN, high: NaN, samples };
  const sampleA = new Array(a.length);
  const sampleB = new Array(b.length);
  const interval = percentileInterval(
    (random) => statistic(resample(a, sampleA, random)) / statistic(resample(b, sampleB, random)),
    options,
  );
  return { ratio: statistic(a) / statistic(b), ...interval, samples };
}

/**
 * What an interval of a ratio A/B says: `lower` or `higher` only when the whole interval lies past
 * ±LEVEL, `level` when it lies within it, `undecided` when it reaches across a bound (more pairs).
 */
function verdict({ low, high }) {
  if (!Number.isFinite(low) || !Number.isFinite(high)) return 'undecided';
  if (high < 1 - LEVEL) return 'lower';
  if (low > 1 + LEVEL) return 'higher';
  if (low >= 1 - LEVEL && high <= 1 + LEVEL) return 'level';
  return 'undecided';
}

/**
 * A/B from pairs of measurements taken back to back: the geometric mean of the per-pair ratios, its
 * 95 % bootstrap interval, and the verdict. Pairs where either value is not a positive number are left
 * out (and counted as such).
 */
function compareRatios(pairs) {
  const ratios = pairs.filter(([a, b]) => a > 0 && b > 0 && Number.isFinite(a) && Number.isFinite(b)).map(([a, b]) => a / b);
  const interval = bootstrapInterval(ratios, geometricMean);
  return {
    pairs: ratios.length,
    ratio: ratios.length > 0 ? geometricMean(ratios) : NaN,
    ...interval,
    verdict: verdict(interval),
    ratios,
  };
}

/** The mean of repeated measurements of one figure, with its 95 % bootstrap interval. */
function meanWithInterval(values) {
  const finite = values.filter(Number.isFinite);
  return { n: finite.length, mean: finite.length > 0 ? mean(finite) : NaN, ...bootstrapInterval(finite, mean) };
}

/**
 * Run order for `rounds` rounds of the named scenarios: forwards, then backwards, and so on (for two,
 * ABBA…), so that neither always runs first on a box that drifts through the minutes.
 */
function roundOrders(names, rounds) {
  return Array.from({ length: rounds }, (_, round) => (round % 2 === 0 ? [...names] : [...names].reverse()));
}

module.exports = {
  median,
  LEVEL,
  seededRandom,
  geometricMean,
  bootstrapInterval,
  ratioOfMeans,
  verdict,
  compareRatios,
  meanWithInterval,
  roundOrders,
};
