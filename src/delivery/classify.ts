/** What the partner's answer (or the lack of one) means for the order. Pure: no I/O. */
export type Verdict =
  | { kind: 'delivered' }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  | { kind: 'failed'; reason: string };

export interface HttpAnswer {
  status: number;
  retryAfterMs?: number;
  /** The start of the response body, for the error message. */
  bodySnippet?: string;
}

/** Statuses that say "not now" rather than "never". Everything else in 4xx is the partner's final no. */
const RETRYABLE_4XX = new Set([408, 425, 429]);

export function classifyAnswer(answer: HttpAnswer): Verdict {
  const { status } = answer;
  const detail = answer.bodySnippet ? `: ${answer.bodySnippet}` : '';
  if (status >= 200 && status < 300) return { kind: 'delivered' };
  if (status >= 300 && status < 400) {
    // Redirects are never followed: a partner must register the URL it wants called.
    return { kind: 'retry', reason: `HTTP ${status} redirect (not followed)` };
  }
  if (RETRYABLE_4XX.has(status) || status >= 500) {
    return { kind: 'retry', reason: `HTTP ${status}${detail}`, retryAfterMs: answer.retryAfterMs };
  }
  return { kind: 'failed', reason: `HTTP ${status}${detail}` };
}
