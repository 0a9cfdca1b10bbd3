import type { AttemptOutcome } from '../db/record-attempt';
import { backoffDelay, type BackoffPolicy } from './backoff';
import type { Verdict } from './classify';

export interface RetryPolicy extends BackoffPolicy {
  maxAttempts: number;
}

/**
 * Turns a verdict on attempt number `attempt` (1-based) into what the order becomes. Pure.
 * Retry-After is honoured, within the same ceiling as our own backoff.
 */
export function decideOutcome(
  verdict: Verdict,
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): AttemptOutcome {
  if (verdict.kind === 'delivered') return { kind: 'delivered' };
  if (verdict.kind === 'failed') return { kind: 'failed', error: verdict.reason };
  if (attempt >= policy.maxAttempts) {
    return { kind: 'failed', error: `${verdict.reason} (gave up after ${attempt} attempts)` };
  }
  const ours = backoffDelay(attempt, policy, random);
  const theirs = verdict.retryAfterMs === undefined ? 0 : Math.min(verdict.retryAfterMs, policy.maxMs);
  return { kind: 'retry', error: verdict.reason, delayMs: Math.max(ours, theirs) };
}
