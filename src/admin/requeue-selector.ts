import { OrderStatus } from '../db/order-status';
import type { RequeueSelector } from '../db/requeue';
import { UsageError } from '../errors/usage-error';
import { canonicalOrderId, parsePositiveInteger, parseTimestamp } from './parse-options';

export type { RequeueSelector } from '../db/requeue';

/** The command line of `requeue`, as commander hands it over: strings, unchecked. */
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
  batchSize?: string;
}

export interface ParsedRequeueOptions {
  selector: RequeueSelector;
  /** The statuses this run moves back to 5: [7], [7, 6] or [6]. */
  statuses: number[];
}

/** Each batch is one UPDATE holding its rows' locks until it commits: big enough to be quick, small enough to be brief. */
export const DEFAULT_BATCH_SIZE = 500;
export const MAX_BATCH_SIZE = 10_000;

/**
 * Turns the command line into a selector and the statuses to move, or says exactly what is wrong.
 * A bare `requeue` is refused: moving every failed order back is `--all`, said on purpose.
 */
export function parseRequeueOptions(input: RequeueOptionsInput): ParsedRequeueOptions {
  const selector: RequeueSelector = {};
  if (input.id !== undefined) selector.ids = parseIdList(input.id);
  if (input.since !== undefined) selector.since = parseTimestamp('--since', input.since);
  if (input.until !== undefined) selector.until = parseTimestamp('--until', input.until);
  if (selector.since && selector.until && selector.since > selector.until) throw new UsageError('--since is after --until');
  if (input.errorLike !== undefined) {
    if (!input.errorLike.trim()) throw new UsageError('--error-like: give some text to look for');
    selector.errorLike = input.errorLike;
  }
  if (input.callbackHost !== undefined) selector.callbackHost = parseHost(input.callbackHost);
  if (input.limit !== undefined) selector.limit = parsePositiveInteger('--limit', input.limit);

  const narrowed = selector.ids || selector.since || selector.until || selector.errorLike || selector.callbackHost;
  if (!narrowed && !input.all) {
    throw new UsageError('say which orders: --id, --since/--until, --error-like or --callback-host (or --all for every failed order)');
  }
  if (narrowed && input.all) throw new UsageError('--all cannot be combined with other selectors (only with --limit)');
  if (input.all) selector.all = true;
  return { selector, statuses: parseStatuses(input.status, Boolean(input.resendDelivered)) };
}

export function parseBatchSize(value: string | undefined): number {
  return value === undefined ? DEFAULT_BATCH_SIZE : parsePositiveInteger('--batch-size', value, MAX_BATCH_SIZE);
}

/**
 * 7 unless told otherwise. Delivered orders (6) move only with --resend-delivered: alone with
 * `--status 6`, or together with the failed ones when --status is not given.
 */
function parseStatuses(status: string | undefined, resendDelivered: boolean): number[] {
  const { failed, delivered } = OrderStatus;
  if (status === undefined) return resendDelivered ? [failed, delivered] : [failed];
  if (status.trim() === String(failed)) {
    if (resendDelivered) throw new UsageError('--status 7 leaves delivered orders out: drop --resend-delivered, or use --status 6');
    return [failed];
  }
  if (status.trim() === String(delivered)) {
    if (!resendDelivered) throw new UsageError('--status 6: sending delivered orders again needs --resend-delivered, said on purpose');
    return [delivered];
  }
  throw new UsageError(`--status: only 7 (failed), or 6 with --resend-delivered; got ${JSON.stringify(status)}`);
}

function parseIdList(value: string): string[] {
  const given = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (given.length === 0) throw new UsageError(`--id: expected order ids like 1,2,3; got ${JSON.stringify(value)}`);
  const ids = given.map((s) => {
    const id = canonicalOrderId(s);
    if (id === undefined) throw new UsageError(`--id: expected order ids like 1,2,3; ${JSON.stringify(s)} is not one`);
    return id;
  });
  return [...new Set(ids)];
}

/** A host as callback_host() returns it: no scheme, userinfo, port or path, lower-case. */
function parseHost(value: string): string {
  const host = value.trim().toLowerCase();
  if (!/^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)$/.test(host)) {
    throw new UsageError(`--callback-host: ${JSON.stringify(value)} is not a host name (give the host alone: no scheme, port or path)`);
  }
  return host;
}
