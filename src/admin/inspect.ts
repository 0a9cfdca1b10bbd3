import type { Db } from '../db/connection';
import { findOrder, type OrderRecord } from '../db/find-order';
import { listAttempts, type AttemptRecord } from '../db/list-attempts';
import { UserError } from '../errors/user-error';
import { redactUrl } from '../observability/redact-url';
import type { CallbackQueues } from '../queue/shards';
import { parseOrderId } from './parse-options';

export interface Inspection {
  order: Omit<OrderRecord, 'callback_url'> & { callback_url: string | null; status_name: string };
  attempts: AttemptRecord[];
  /** Where the order's job is in BullMQ: waiting, active, delayed, prioritized, completed, failed... or absent. */
  job: string;
}

/** The text view fits one screen: the newest attempts, the rest counted (--json has them all). */
const ATTEMPTS_SHOWN = 20;
/** last_error keeps up to 512 bytes of a partner's answer: enough to read, too much for a line. */
const TEXT_WIDTH = 160;

const STATUS_NAMES: Record<number, string> = { 5: 'ready', 6: 'delivered', 7: 'failed' };

export async function inspectOrder(db: Db, queues: Pick<CallbackQueues, 'getJobState'>, orderIdInput: string): Promise<Inspection> {
  // Canonical ("007" is 7): the job id is derived from the text, and must be the producer's.
  const orderId = parseOrderId(orderIdInput);
  const order = await findOrder(db, orderId);
  if (!order) throw new UserError(`no order with id ${orderId}`);
  const [attempts, state] = await Promise.all([listAttempts(db, orderId), queues.getJobState(orderId)]);
  return {
    order: {
      ...order,
      callback_url: order.callback_url === null ? null : redactUrl(order.callback_url),
      status_name: STATUS_NAMES[order.status] ?? `other (${order.status})`,
    },
    attempts,
    job: state === 'unknown' ? 'absent' : state,
  };
}

export function formatInspection({ order, attempts, job }: Inspection): string {
  const when = (d: Date | null) => (d ? d.toISOString() : '-');
  const cut = (text: string) => (text.length > TEXT_WIDTH ? `${text.slice(0, TEXT_WIDTH)}…` : text).replace(/\s+/g, ' ');
  const lines = [
    `order ${order.id}: ${order.status_name} (status ${order.status}, version ${order.version})`,
    `  callback_url     ${order.callback_url ?? '-'}`,
    `  attempts         ${order.attempts}`,
    `  last_error       ${order.last_error === null ? '-' : cut(order.last_error)}`,
    `  next_attempt_at  ${when(order.next_attempt_at)}`,
    `  ready_since      ${when(order.ready_since)}`,
    `  delivered_at     ${when(order.delivered_at)}`,
    `  created/updated  ${when(order.created_at)} / ${when(order.updated_at)}`,
    `  claim            ${order.claim_token ? `held until ${when(order.claim_until ?? order.lease_until)}` : order.lease_until ? `queued, lease until ${when(order.lease_until)}` : '-'}`,
    `  job in queue     ${job}`,
    `delivery log (${attempts.length} attempt${attempts.length === 1 ? '' : 's'})`,
  ];
  const hidden = Math.max(0, attempts.length - ATTEMPTS_SHOWN);
  if (hidden) lines.push(`  … ${hidden} earlier attempt(s) not shown (--json has them all)`);
  for (const a of attempts.slice(hidden)) {
    const status = a.http_status ? `HTTP ${a.http_status}` : undefined;
    const result = a.error ? (status && !a.error.startsWith(status) ? `${status} ${cut(a.error)}` : cut(a.error)) : (status ?? '-');
    lines.push(
      `  #${a.attempt}  ${a.started_at.toISOString()}  ${String(a.duration_ms).padStart(6)} ms  ${a.outcome.padEnd(9)}  ${result}  [${a.worker}]${a.superseded ? '  (superseded)' : ''}`,
    );
  }
  return lines.join('\n');
}
