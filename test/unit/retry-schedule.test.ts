import { decideOutcome } from '../../src/delivery/decide-outcome';
import {
  DEFAULT_RETRY_SCHEDULE_MS,
  formatDuration,
  longestDelayOf,
  maxAttemptsOf,
  parseDuration,
  parseRetrySchedule,
  retryDelay,
} from '../../src/delivery/retry-schedule';

const schedule = { kind: 'schedule' as const, delaysMs: [5000, 300_000, 1_800_000] };

describe('the retry schedule', () => {
  it('by default spans more than a day, in 8 attempts', () => {
    const total = DEFAULT_RETRY_SCHEDULE_MS.reduce((sum, delay) => sum + delay, 0);
    expect(total).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(formatDuration(total)).toBe('27h 35m 5s');
    expect(maxAttemptsOf({ kind: 'schedule', delaysMs: DEFAULT_RETRY_SCHEDULE_MS })).toBe(8);
  });

  it('reads durations in ms, s, m, h and d', () => {
    expect(['500ms', '5s', '5m', '2h', '1d'].map(parseDuration)).toEqual([500, 5000, 300_000, 7_200_000, 86_400_000]);
    expect(parseRetrySchedule('5s,5m, 30m ,2h')).toEqual([5000, 300_000, 1_800_000, 7_200_000]);
    expect(() => parseRetrySchedule('')).toThrow(/at least one delay/);
    expect(() => parseRetrySchedule('8d')).toThrow(/between 1s and 7d/);
  });

  it('waits the scheduled delay for each retry, within ±10 %', () => {
    expect([1, 2, 3].map((attempt) => retryDelay(attempt, schedule, () => 0.5))).toEqual([5000, 300_000, 1_800_000]);
    expect(retryDelay(2, schedule, () => 0)).toBe(270_000);
    expect(retryDelay(2, schedule, () => 1)).toBe(330_000);
  });

  it('fails the order after the last scheduled retry, and honours Retry-After up to the longest delay', () => {
    const retry = { kind: 'retry' as const, reason: 'HTTP 503' };
    expect(decideOutcome(retry, 3, schedule, () => 0.5)).toEqual({ kind: 'retry', error: 'HTTP 503', delayMs: 1_800_000 });
    expect(decideOutcome(retry, 4, schedule)).toEqual({ kind: 'failed', error: 'HTTP 503 (gave up after 4 attempts)' });
    expect(longestDelayOf(schedule)).toBe(1_800_000);
    expect(decideOutcome({ ...retry, retryAfterMs: 86_400_000 }, 1, schedule, () => 0.5)).toMatchObject({ delayMs: 1_800_000 });
  });

  it('an order with more attempts than a shorter schedule has gets its last delay, then fails', () => {
    expect(retryDelay(7, schedule, () => 0.5)).toBe(1_800_000);
  });
});
