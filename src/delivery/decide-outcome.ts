import type { AttemptOutcome } from '../db/record-attempt';
import type { Verdict } from './classify';
import { longestDelayOf, maxAttemptsOf, retryDelay, type RetryPolicy } from './retry-schedule';

/**
 * Turns a verdict on attempt number `attempt` (1-based) into what the order becomes. Pure.
 * Retry-After is honoured, up to the longest delay of our own policy.
 */
export function decideOutcome(verdict: Verdict, attempt: number, policy: RetryPolicy, random: () => number = Math.random): AttemptOutcome {
  if (verdict.kind === 'delivered') return { kind: 'delivered' };
  if (verdict.kind === 'failed') return { kind: 'failed', error: verdict.reason };
  if (attempt >= maxAttemptsOf(policy)) {
    return { kind: 'failed', error: `${verdict.reason} (gave up after ${attempt} attempts)` };
  }
  const ours = retryDelay(attempt, policy, random);
  const theirs = verdict.retryAfterMs === undefined ? 0 : Math.min(verdict.retryAfterMs, longestDelayOf(policy));
  return { kind: 'retry', error: verdict.reason, delayMs: Math.max(ours, theirs) };
}
