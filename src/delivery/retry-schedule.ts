import { backoffDelay } from './backoff';

/**
 * How long to wait before each retry. Either a schedule (a list of delays, one per retry, as webhook
 * services publish theirs) or the exponential backoff of RETRY_BASE_MS / RETRY_MAX_MS / MAX_ATTEMPTS.
 * Pure: parsing and arithmetic.
 */

export type RetryPolicy =
  /** Retry n waits delaysMs[n - 1]; after the last, the order fails: delaysMs.length + 1 attempts. */
  { kind: 'schedule'; delaysMs: readonly number[] } | { kind: 'exponential'; baseMs: number; maxMs: number; maxAttempts: number };

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * The default: 8 attempts over 27 h 35 min 5 s, so an order outlives a partner's bad day (a botched
 * deploy, a secret rotated on one side only) and fails for good only after it.
 */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [5 * SECOND, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR];

const UNITS: Record<string, number> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: 24 * HOUR };

/** `500ms`, `5s`, `5m`, `2h`, `1d`: milliseconds. Throws with a message naming what it could not read. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) throw new Error(`"${text.trim()}" is not a duration like 500ms, 5s, 5m, 2h or 1d`);
  return Number(match[1]) * UNITS[match[2]];
}

/** `5s,5m,30m,2h`: one delay per retry, at least one, each at least 1 s and at most 7 days. */
export function parseRetrySchedule(text: string): number[] {
  const delays = text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map(parseDuration);
  if (delays.length === 0) throw new Error('needs at least one delay, e.g. 5s,5m,30m,2h,5h,10h,10h');
  if (delays.length > 100) throw new Error('at most 100 retries');
  for (const delay of delays) {
    if (delay < SECOND || delay > 7 * 24 * HOUR) throw new Error('each delay must be between 1s and 7d');
  }
  return delays;
}

/** How many attempts an order gets in all. */
export function maxAttemptsOf(policy: RetryPolicy): number {
  return policy.kind === 'schedule' ? policy.delaysMs.length + 1 : policy.maxAttempts;
}

/** The longest a retry waits: Retry-After is honoured up to this. */
export function longestDelayOf(policy: RetryPolicy): number {
  return policy.kind === 'schedule' ? Math.max(...policy.delaysMs) : policy.maxMs;
}

/**
 * The wait before the retry after `attempt` failed attempts (1-based), jittered so that a burst of
 * failures at one partner does not come back as a burst: a schedule's delay ±10 %, the exponential
 * backoff with "equal jitter" (half fixed, half random). `random` is injectable for tests.
 */
export function retryDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  if (policy.kind === 'schedule') {
    const delay = policy.delaysMs[Math.min(Math.max(attempt, 1), policy.delaysMs.length) - 1];
    return Math.round(delay * (0.9 + 0.2 * random()));
  }
  return backoffDelay(attempt, policy, random);
}

/** `1h 30m`, `27h 35m 5s`, `500ms`: a delay for people. */
export function formatDuration(ms: number): string {
  if (ms < SECOND) return `${ms}ms`;
  const parts: string[] = [];
  let left = Math.round(ms / SECOND);
  for (const [unit, size] of [
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (left >= size) {
      parts.push(`${Math.floor(left / size)}${unit}`);
      left %= size;
    }
  }
  return parts.join(' ');
}
