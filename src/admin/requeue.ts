import type { Db } from '../db/connection';
import { OrderStatus } from '../db/order-status';
import { countSelectedByStatus, findSelectedIds, insertRequeueAudit, requeueBatch } from '../db/requeue-orders';
import type { RequeueSelector } from './requeue-selector';

export interface RequeueRequest {
  selector: RequeueSelector;
  actor: string;
  dryRun: boolean;
  /** Also move delivered orders (6) back to 5: they are sent again, with the same webhook-id. */
  resendDelivered: boolean;
  batchSize: number;
}

export interface RequeueReport {
  dryRun: boolean;
  /** Orders the selector matches at a status this run moves (7, and 6 with --resend-delivered), within --limit. */
  matched: number;
  changed: number;
  /** The first ids that would change (dry run) or did change. */
  sample: string[];
  leftAlone: { ready: number; delivered: number; other: number };
  /** --id values that name no order. */
  unknownIds: string[];
}

const SAMPLE_SIZE = 20;

/** One requeue run: report, change in batches (unless a dry run), and leave an audit row either way. */
export async function requeue(db: Db, request: RequeueRequest): Promise<RequeueReport> {
  const { selector } = request;
  const statuses = request.resendDelivered ? [OrderStatus.failed, OrderStatus.delivered] : [OrderStatus.failed];
  const counts = await countSelectedByStatus(db, selector);
  const count = (status: number) => counts.get(status) ?? 0;
  const selectable = statuses.reduce((sum, s) => sum + count(s), 0);
  const matched = Math.min(selectable, selector.limit ?? Infinity);
  const unknownIds = selector.ids ? await findUnknownIds(db, selector.ids) : [];

  let changed = 0;
  const sample: string[] = [];
  if (request.dryRun) {
    sample.push(...(await findSelectedIds(db, selector, statuses, Math.min(SAMPLE_SIZE, matched))));
  } else {
    let afterId = '0';
    while (changed < matched) {
      const batch = await requeueBatch(db, selector, statuses, afterId, Math.min(request.batchSize, matched - changed));
      if (!batch.lastId) break;
      changed += batch.changedIds.length;
      sample.push(...batch.changedIds.slice(0, SAMPLE_SIZE - sample.length));
      afterId = batch.lastId;
    }
  }

  const known = [...counts.values()].reduce((a, b) => a + b, 0);
  const report: RequeueReport = {
    dryRun: request.dryRun,
    matched,
    changed,
    sample,
    leftAlone: {
      ready: count(OrderStatus.ready),
      delivered: request.resendDelivered ? 0 : count(OrderStatus.delivered),
      other: known - selectable - count(OrderStatus.ready) - (request.resendDelivered ? 0 : count(OrderStatus.delivered)),
    },
    unknownIds,
  };
  await insertRequeueAudit(db, {
    actor: request.actor,
    selector,
    matched,
    changed,
    dryRun: request.dryRun,
    resendDelivered: request.resendDelivered,
  });
  return report;
}

async function findUnknownIds(db: Db, ids: string[]): Promise<string[]> {
  const found = new Set((await db('orders').whereIn('id', ids).select('id')).map((r: { id: string }) => r.id));
  return ids.filter((id) => !found.has(id));
}

export function formatRequeueReport(report: RequeueReport): string {
  const lines = [
    report.dryRun
      ? `dry run: ${report.matched} order(s) would be moved back to 5; nothing changed`
      : `requeued ${report.changed} of ${report.matched} matching order(s)`,
  ];
  if (report.sample.length) lines.push(`  ids: ${report.sample.join(', ')}${report.matched > report.sample.length ? ', …' : ''}`);
  const { ready, delivered, other } = report.leftAlone;
  if (ready) lines.push(`  ${ready} already ready (5): left alone`);
  if (delivered) lines.push(`  ${delivered} already delivered (6): left alone (--resend-delivered sends them again)`);
  if (other) lines.push(`  ${other} in another status: left alone`);
  if (report.unknownIds.length) lines.push(`  unknown ids: ${report.unknownIds.join(', ')}`);
  return lines.join('\n');
}
