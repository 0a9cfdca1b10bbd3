import { backoffDelay, parseRetryAfter } from '../../src/delivery/backoff';
import { decideOutcome } from '../../src/delivery/decide-outcome';

const policy = { baseMs: 1000, maxMs: 60_000 };

describe('backoffDelay', () => {
  it('doubles per attempt, with equal jitter between half and all of the step', () => {
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, policy, () => 0))).toEqual([500, 1000, 2000, 4000]);
    expect([1, 2, 3, 4].map((a) => backoffDelay(a, policy, () => 1))).toEqual([1000, 2000, 4000, 8000]);
  });

  it('never exceeds the ceiling, even after very many attempts', () => {
    expect(backoffDelay(10, policy, () => 1)).toBe(60_000);
    expect(backoffDelay(10_000, policy, () => 1)).toBe(60_000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
  });
  it('answers whole milliseconds when now has a fraction (a clock carried forward by performance.now())', () => {
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now + 0.25)).toBe(30_000);
  });
  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});

describe('decideOutcome', () => {
  const retryPolicy = { kind: 'exponential' as const, ...policy, maxAttempts: 3 };
  it('passes delivered and failed through', () => {
    expect(decideOutcome({ kind: 'delivered' }, 1, retryPolicy)).toEqual({ kind: 'delivered' });
    expect(decideOutcome({ kind: 'failed', reason: 'HTTP 404' }, 1, retryPolicy)).toEqual({ kind: 'failed', error: 'HTTP 404' });
  });
  it("retries with our backoff, or the partner's Retry-After when longer, capped at the ceiling", () => {
    expect(decideOutcome({ kind: 'retry', reason: 'HTTP 500' }, 1, retryPolicy, () => 0)).toEqual({
      kind: 'retry',
      error: 'HTTP 500',
      delayMs: 500,
    });
    expect(decideOutcome({ kind: 'retry', reason: 'HTTP 429', retryAfterMs: 7000 }, 1, retryPolicy, () => 0)).toMatchObject({
      delayMs: 7000,
    });
    expect(decideOutcome({ kind: 'retry', reason: 'HTTP 429', retryAfterMs: 86_400_000 }, 1, retryPolicy, () => 0)).toMatchObject({
      delayMs: 60_000,
    });
  });
  it('gives up on the MAX_ATTEMPTS-th failure', () => {
    expect(decideOutcome({ kind: 'retry', reason: 'HTTP 503' }, 3, retryPolicy)).toEqual({
      kind: 'failed',
      error: 'HTTP 503 (gave up after 3 attempts)',
    });
  });
});
