import { findOrder, listAttempts, type LoggedAttempt, type OrderRecord } from '../db/reports/order-history';
import { UserError } from '../errors/user-error';
import { redactUrl } from '../observability/redact-url';
import type { AdminServices, Unreachable } from './admin-services';
import { parseOrderId } from './parse-options';

export interface Inspection {
  orderId: string;
  /** Null, as `attempts` is, when Postgres was unreachable. */
  order: (Omit<OrderRecord, 'callback_url'> & { callback_url: string | null; status_name: string }) | null;
  attempts: LoggedAttempt[] | null;
  /**
   * Where the order's job is in BullMQ: waiting, active, delayed, prioritized, completed, failed... or
   * absent; null when Redis was unreachable.
   */
  job: string | null;
  unreachable: Unreachable[];
}

/** The text view fits one screen: the newest attempts, the rest counted (--json has them all). */
const ATTEMPTS_SHOWN = 20;
/** last_error keeps up to 512 bytes of a partner's answer: enough to read, too much for a line. */
const TEXT_WIDTH = 160;

const STATUS_NAMES: Record<number, string> = { 5: 'ready', 6: 'delivered', 7: 'failed' };

export async function inspectOrder(services: AdminServices, orderIdInput: string): Promise<Inspection> {
  // Canonical ("007" is 7): the job id is derived from the text, and must be the producer's.
  const orderId = parseOrderId(orderIdInput);
  const [fromPostgres, state] = await Promise.all([
    services.readIfReachable('postgres', async () => {
      const db = await services.postgres();
      const order = await findOrder(db, orderId);
      return order ? { order, attempts: await listAttempts(db, orderId) } : 'absent';
    }),
    services.readIfReachable('redis', async () => (await services.callbackQueues()).getJobState(orderId)),
  ]);
  if (fromPostgres === 'absent') throw new UserError(`no order with id ${orderId}`);
  const order = fromPostgres?.order;
  return {
    orderId,
    order: order
      ? {
          ...order,
          callback_url: order.callback_url === null ? null : redactUrl(order.callback_url),
          status_name: STATUS_NAMES[order.status] ?? `other (${order.status})`,
        }
      : null,
    attempts: fromPostgres?.attempts ?? null,
    job: state === null ? null : state === 'unknown' ? 'absent' : state,
    unreachable: services.unreachable,
  };
}

export function formatInspection({ orderId, order, attempts, job, unreachable }: Inspection): string {
  const missing = (service: string) => {
    const found = unreachable.find((u) => u.service === service);
    return `(${service} unreachable${found ? ` at ${found.address}` : ''})`;
  };
  if (order === null || attempts === null) {
    return [`order ${orderId}: ${missing('postgres')}`, `  job in queue     ${job ?? missing('redis')}`].join('\n');
  }
  const when = (d: Date | null) => (d ? d.toISOString() : '-');
  const cut = (text: string) => (text.length > TEXT_WIDTH ? `${text.slice(0, TEXT_WIDTH)}…` : text).replace(/\s+/g, ' ');
  const claim = order.claim_token
    ? `held until ${when(order.claim_until ?? order.lease_until)}`
    : order.lease_until
      ? `queued, lease until ${when(order.lease_until)}`
      : '-';
  const lines = [
    `order ${order.id}: ${order.status_name} (status ${order.status}, version ${order.version})`,
    `  callback_url     ${order.callback_url ?? '-'}`,
    `  attempts         ${order.attempts}`,
    `  last_error       ${order.last_error === null ? '-' : cut(order.last_error)}`,
    `  next_attempt_at  ${when(order.next_attempt_at)}`,
    `  ready_since      ${when(order.ready_since)}`,
    `  delivered_at     ${when(order.delivered_at)}`,
    `  created/updated  ${when(order.created_at)} / ${when(order.updated_at)}`,
    `  claim            ${claim}`,
    `  job in queue     ${job ?? missing('redis')}`,
    `delivery log (${attempts.length} attempt${attempts.length === 1 ? '' : 's'})`,
  ];
  const hidden = Math.max(0, attempts.length - ATTEMPTS_SHOWN);
  if (hidden) lines.push(`  … ${hidden} earlier attempt(s) not shown (--json has them all)`);
  for (const a of attempts.slice(hidden)) {
    const status = a.http_status ? `HTTP ${a.http_status}` : undefined;
    const result = a.error ? (status && !a.error.startsWith(status) ? `${status} ${cut(a.error)}` : cut(a.error)) : (status ?? '-');
    lines.push(
      `  #${a.attempt}  ${a.started_at.toISOString()}  ${String(a.duration_ms).padStart(6)} ms  ${a.outcome.padEnd(9)}  ` +
        `${result}  [${a.worker}]${a.superseded ? '  (superseded)' : ''}`,
    );
  }
  return lines.join('\n');
}
