import type { HttpAnswer, Verdict } from '../delivery/classify';
import type { AbortCause } from '../delivery/classify-error';

/**
 * What one attempt says about its partner (not about its order). `firstAttempt`: the order had not been
 * tried before. Only first attempts count toward the trip rule: a retry's failure is explained by its
 * order's own history (a partner with a few broken orders, retried after its healthy ones are done,
 * would otherwise look down), while a partner that is down fails the orders it has not failed before.
 */
export type PartnerOutcome =
  /** It answered: a 2xx, a redirect, or a 4xx about this one order. `answerMs`: how long it took. */
  | { kind: 'healthy'; answerMs: number; firstAttempt: boolean }
  /** It failed as a server would: no answer, a timeout, a 5xx, 408, 425 or 429. */
  | { kind: 'failed'; error: string; firstAttempt: boolean; retryAfter?: { pauseMs: number; status: number } }
  /** Nothing about the partner: the order's own fault (a refused destination), or we stopped the request. */
  | { kind: 'not_counted' };

/** Answers that say "not now" about the server rather than "no" about the order. */
const SERVER_TROUBLE_4XX = new Set([408, 425, 429]);

/**
 * Reads an attempt's result as evidence about the partner. `aborted`: the request was stopped by us
 * (shutdown, or the claim running out), which says nothing of the partner. A verdict without an answer
 * is the network's (a failure) unless it is final (a refused destination: the order's URL).
 */
export function partnerOutcome(
  verdict: Verdict | undefined,
  answer: HttpAnswer | undefined,
  attempt: { aborted: boolean; answerMs: number; firstAttempt: boolean },
): PartnerOutcome {
  const { aborted, answerMs, firstAttempt } = attempt;
  if (aborted || verdict === undefined) return { kind: 'not_counted' };
  if (!answer) return verdict.kind === 'retry' ? { kind: 'failed', error: verdict.reason, firstAttempt } : { kind: 'not_counted' };
  const { status } = answer;
  if (status < 500 && !SERVER_TROUBLE_4XX.has(status)) return { kind: 'healthy', answerMs, firstAttempt };
  const error = verdict.kind === 'delivered' ? `HTTP ${status}` : verdict.reason;
  const pauses = (status === 429 || status === 503) && answer.retryAfterMs !== undefined;
  return pauses
    ? { kind: 'failed', error, firstAttempt, retryAfter: { pauseMs: answer.retryAfterMs!, status } }
    : { kind: 'failed', error, firstAttempt };
}

/**
 * A request cut short to this share of the callback timeout, or less, because the order's claim was
 * running out, was stopped by us; one that ran longer without an answer timed out as far as the partner
 * is concerned. (With CLAIM_TTL_MS near its minimum, every budget is a little under the timeout: counting
 * those as ours would never count a timeout against a partner that hangs.)
 */
const CUT_SHORT_SHARE = 0.8;

/** Whether a request that got no answer was stopped by us, which says nothing of the partner. */
export function stoppedByUs(cause: AbortCause | undefined, budgetMs: number, callbackTimeoutMs: number): boolean {
  return cause === 'shutdown' || (cause === 'claim' && budgetMs < CUT_SHORT_SHARE * callbackTimeoutMs);
}
