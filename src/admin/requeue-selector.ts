import { UserError } from '../errors/user-error';

/** Which orders a requeue is about. Every field narrows the selection; none widens it. */
export interface RequeueSelector {
  ids?: string[];
  /** updated_at bounds: for a failed order, when it failed. */
  since?: Date;
  until?: Date;
  /** Case-insensitive substring of last_error. */
  errorLike?: string;
  /** Host of callback_url, exactly (case-insensitive). */
  callbackHost?: string;
  /** At most this many orders change. */
  limit?: number;
}

export interface RequeueOptionsInput {
  id?: string;
  since?: string;
  until?: string;
  errorLike?: string;
  callbackHost?: string;
  limit?: string;
  all?: boolean;
  status?: string;
  resendDelivered?: boolean;
}

/**
 * Turns the command line into a selector, or says exactly what is wrong with it. A bare `requeue`
 * is refused: moving every failed order back is `--all`, said on purpose.
 */
export function parseRequeueSelector(input: RequeueOptionsInput): RequeueSelector {
  const selector: RequeueSelector = {};
  if (input.id !== undefined) {
    const ids = input.id.split(',').map((s) => s.trim()).filter(Boolean);
    const bad = ids.filter((id) => !/^\d{1,19}$/.test(id));
    if (ids.length === 0 || bad.length > 0) throw new UserError(`--id: expected order ids like 1,2,3; got ${JSON.stringify(input.id)}`);
    selector.ids = [...new Set(ids)];
  }
  if (input.since !== undefined) selector.since = parseTimestamp('--since', input.since);
  if (input.until !== undefined) selector.until = parseTimestamp('--until', input.until);
  if (selector.since && selector.until && selector.since > selector.until) throw new UserError('--since is after --until');
  if (input.errorLike !== undefined) {
    if (!input.errorLike.trim()) throw new UserError('--error-like: give some text to look for');
    selector.errorLike = input.errorLike;
  }
  if (input.callbackHost !== undefined) {
    if (!/^[A-Za-z0-9.[\]:-]+$/.test(input.callbackHost)) throw new UserError(`--callback-host: ${JSON.stringify(input.callbackHost)} is not a host name`);
    selector.callbackHost = input.callbackHost.toLowerCase();
  }
  if (input.limit !== undefined) {
    if (!/^\d+$/.test(input.limit) || Number(input.limit) < 1) throw new UserError(`--limit: expected a positive whole number; got ${JSON.stringify(input.limit)}`);
    selector.limit = Number(input.limit);
  }
  if (input.status !== undefined && input.status !== '7') {
    throw new UserError(`--status: only 7 (failed) can be requeued; re-sending delivered orders is --resend-delivered`);
  }
  const narrowed = selector.ids || selector.since || selector.until || selector.errorLike || selector.callbackHost;
  if (!narrowed && !input.all) {
    throw new UserError('say which orders: --id, --since/--until, --error-like or --callback-host (or --all for every failed order)');
  }
  if (narrowed && input.all) throw new UserError('--all cannot be combined with other selectors');
  return selector;
}

function parseTimestamp(flag: string, value: string): Date {
  // ISO 8601 only: a date alone, or a date and time with an optional zone.
  const date = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw new UserError(`${flag}: expected an ISO timestamp like 2026-11-24T10:00:00Z; got ${JSON.stringify(value)}`);
  return date;
}
