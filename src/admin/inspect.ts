import type { Queue } from 'bullmq';
import type { Db } from '../db/connection';
import { findOrder, type OrderRecord } from '../db/find-order';
import { listAttempts, type AttemptRecord } from '../db/list-attempts';
import { UserError } from '../errors/user-error';
import { redactUrl } from '../observability/redact-url';
import { jobIdFor, type CallbackJobData } from '../queue/callback-queue';

export interface Inspection {
  order: Omit<OrderRecord, 'callback_url'> & { callback_url: string | null; status_name: string };
  attempts: AttemptRecord[];
  /** Where the order's job is in BullMQ: waiting, active, delayed, prioritized... or absent. */
  job: string;
}

const STATUS_NAMES: Record<number, string> = { 5: 'ready', 6: 'delivered', 7: 'failed' };

export async function inspectOrder(db: Db, queue: Queue<CallbackJobData>, orderIdInput: string): Promise<Inspection> {
  if (!/^\d{1,19}$/.test(orderIdInput)) throw new UserError(`order id must be a number; got ${JSON.stringify(orderIdInput)}`);
  const order = await findOrder(db, orderIdInput);
  if (!order) throw new UserError(`no order with id ${orderIdInput}`);
  const [attempts, state] = await Promise.all([listAttempts(db, orderIdInput), queue.getJobState(jobIdFor(orderIdInput))]);
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
  const lines = [
    `order ${order.id}: ${order.status_name} (status ${order.status}, version ${order.version})`,
    `  callback_url     ${order.callback_url ?? '-'}`,
    `  attempts         ${order.attempts}`,
    `  last_error       ${order.last_error ?? '-'}`,
    `  next_attempt_at  ${when(order.next_attempt_at)}`,
    `  ready_since      ${when(order.ready_since)}`,
    `  delivered_at     ${when(order.delivered_at)}`,
    `  created/updated  ${when(order.created_at)} / ${when(order.updated_at)}`,
    `  claim            ${order.claim_token ? `held until ${when(order.lease_until)}` : order.lease_until ? `queued, lease until ${when(order.lease_until)}` : '-'}`,
    `  job in queue     ${job}`,
    `delivery log (${attempts.length} attempt${attempts.length === 1 ? '' : 's'})`,
  ];
  for (const a of attempts) {
    const result = a.http_status ? `HTTP ${a.http_status}` : (a.error ?? '-');
    lines.push(
      `  #${a.attempt}  ${a.started_at.toISOString()}  ${String(a.duration_ms).padStart(6)} ms  ${a.outcome.padEnd(9)}  ${result}  [${a.worker}]${a.superseded ? '  (superseded)' : ''}`,
    );
  }
  return lines.join('\n');
}
