/** What the partner's answer (or the lack of one) means for the order. Pure: no I/O. */
export type Verdict = { kind: 'delivered' } | { kind: 'retry'; reason: string; retryAfterMs?: number } | { kind: 'failed'; reason: string };

export interface HttpAnswer {
  status: number;
  retryAfterMs?: number;
  /** The start of the response body, for the error message. */
  bodySnippet?: string;
}

/**
 * The answers that can never succeed for that order, whatever the partner fixes: a malformed or
 * unprocessable body (400, 422), too large (413), no such resource (404) or gone for good (410). Every
 * other non-2xx is retried, 401 and 403 included: a partner that botched a secret rotation fixes it
 * within hours, and its orders must still be there. FINAL_STATUSES replaces the list.
 */
export const DEFAULT_FINAL_STATUSES: ReadonlySet<number> = new Set([400, 404, 410, 413, 422]);

/** `400,404,410-413`: HTTP statuses from 300 to 599, single or as ranges. */
export function parseStatusList(text: string): ReadonlySet<number> {
  const statuses = new Set<number>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^(\d{3})(?:-(\d{3}))?$/.exec(part);
    const from = Number(match?.[1]);
    const to = Number(match?.[2] ?? match?.[1]);
    if (!match || from < 300 || to > 599 || to < from) throw new Error(`"${part}" is not a status from 300 to 599 or a range like 400-404`);
    for (let status = from; status <= to; status++) statuses.add(status);
  }
  return statuses;
}

export function classifyAnswer(answer: HttpAnswer, finalStatuses: ReadonlySet<number> = DEFAULT_FINAL_STATUSES): Verdict {
  const { status } = answer;
  const detail = answer.bodySnippet ? `: ${answer.bodySnippet}` : '';
  if (status >= 200 && status < 300) return { kind: 'delivered' };
  if (finalStatuses.has(status)) return { kind: 'failed', reason: `HTTP ${status}${detail}` };
  if (status >= 300 && status < 400) {
    // Redirects are never followed: a partner must register the URL it wants called.
    return { kind: 'retry', reason: `HTTP ${status} redirect (not followed)` };
  }
  return { kind: 'retry', reason: `HTTP ${status}${detail}`, retryAfterMs: answer.retryAfterMs };
}
