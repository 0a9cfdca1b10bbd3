import type { Db } from '../db/connection';
import { OrderStatus } from '../db/order-status';
import {
  countSelectedOrders,
  findSelectedIds,
  findUnknownIds,
  insertRequeueAudit,
  recordRequeueProgress,
  requeueOrders,
  type RequeueSelector,
} from '../db/requeue';

export interface RequeueRequest {
  selector: RequeueSelector;
  /** Moved back to 5: [7], or with a resend [7, 6] or [6]. */
  statuses: number[];
  /** Who, for the audit row. */
  actor: string;
  dryRun: boolean;
  /** Orders per batch: per conditional update, and per transaction. */
  batchSize: number;
  /**
   * Told after each batch has committed: progress for a person watching a long run. `processedSoFar`
   * (changed, or changed by someone else meanwhile) counts towards `matched`.
   */
  onBatch?: (batch: { selected: number; changed: number; changedSoFar: number; processedSoFar: number; matched: number }) => void;
}

export interface RequeueReport {
  dryRun: boolean;
  statuses: number[];
  /** Orders the selector matches at a status this run moves, within --limit, when the run started. */
  matched: number;
  changed: number;
  /** Matched, then changed by someone else before this run's update reached them: left as they were. */
  changedMeanwhile: number;
  /** The first ids that would change (dry run) or did change. */
  sample: string[];
  /** Selected orders at a status this run does not move. */
  leftAlone: { ready: number; delivered: number; failed: number; other: number };
  /** --id values that name no order. */
  unknownIds: string[];
  auditId: string;
}

const SAMPLE_SIZE = 20;

/**
 * One requeue run: count, audit, then change in keyset batches (unless a dry run). Each batch is its
 * own short transaction, so no lock is held across batches, and an order that is no longer at a
 * requeued status when its batch comes is left alone: running it twice changes nothing the second time.
 */
export async function requeue(db: Db, request: RequeueRequest): Promise<RequeueReport> {
  const { selector, statuses } = request;
  const counts = await countSelectedOrders(db, selector);
  const count = (status: number) => counts.get(status) ?? 0;
  const selectable = statuses.reduce((sum, s) => sum + count(s), 0);
  const matched = Math.min(selectable, selector.limit ?? Infinity);
  const unknownIds = selector.ids ? await findUnknownIds(db, selector.ids) : [];
  const auditId = await insertRequeueAudit(db, {
    actor: request.actor,
    selector: { ...selector, statuses },
    matched,
    dryRun: request.dryRun,
    resendDelivered: statuses.includes(OrderStatus.delivered),
  });

  let changed = 0;
  let changedMeanwhile = 0;
  const sample: string[] = [];
  if (request.dryRun) {
    sample.push(...(await findSelectedIds(db, selector, statuses, '0', Math.min(SAMPLE_SIZE, matched))));
  } else {
    let afterId = '0';
    while (changed < matched) {
      const ids = await findSelectedIds(db, selector, statuses, afterId, Math.min(request.batchSize, matched - changed));
      if (ids.length === 0) break;
      const changedIds = await db.transaction(async (tx) => {
        const done = await requeueOrders(tx, ids, statuses);
        await recordRequeueProgress(tx, auditId, done.length);
        return done;
      });
      changed += changedIds.length;
      changedMeanwhile += ids.length - changedIds.length;
      sample.push(...changedIds.slice(0, SAMPLE_SIZE - sample.length));
      afterId = ids[ids.length - 1];
      request.onBatch?.({
        selected: ids.length,
        changed: changedIds.length,
        changedSoFar: changed,
        processedSoFar: changed + changedMeanwhile,
        matched,
      });
    }
  }

  const moved = (status: number) => statuses.includes(status);
  const known = [...counts.values()].reduce((a, b) => a + b, 0);
  const leftAlone = {
    ready: count(OrderStatus.ready),
    delivered: moved(OrderStatus.delivered) ? 0 : count(OrderStatus.delivered),
    failed: moved(OrderStatus.failed) ? 0 : count(OrderStatus.failed),
    other: 0,
  };
  leftAlone.other = known - selectable - leftAlone.ready - leftAlone.delivered - leftAlone.failed;
  return { dryRun: request.dryRun, statuses, matched, changed, changedMeanwhile, sample, leftAlone, unknownIds, auditId };
}

export function formatRequeueReport(report: RequeueReport): string {
  const lines = [
    report.dryRun
      ? `dry run: ${report.matched} order(s) would be moved back to 5; nothing changed`
      : `requeued ${report.changed} of ${report.matched} matching order(s)`,
  ];
  if (report.sample.length) {
    const total = report.dryRun ? report.matched : report.changed;
    lines.push(`  ids: ${report.sample.join(', ')}${total > report.sample.length ? ', …' : ''}`);
  }
  if (report.changedMeanwhile) lines.push(`  ${report.changedMeanwhile} changed by someone else meanwhile: left as they are`);
  const { ready, delivered, failed, other } = report.leftAlone;
  const alone = [
    ready && `${ready} already ready`,
    delivered && `${delivered} already delivered`,
    failed && `${failed} failed (--status 6 moves delivered ones only)`,
    other && `${other} in another status`,
  ].filter(Boolean);
  if (alone.length) lines.push(`  ${alone.join(', ')}: left alone${delivered ? ' (--resend-delivered sends delivered orders again)' : ''}`);
  if (report.unknownIds.length) {
    const shown = report.unknownIds.slice(0, SAMPLE_SIZE).join(', ');
    lines.push(`  ${report.unknownIds.length} unknown id(s): ${shown}${report.unknownIds.length > SAMPLE_SIZE ? ', …' : ''}`);
  }
  lines.push(`  audit row ${report.auditId}`);
  return lines.join('\n');
}
