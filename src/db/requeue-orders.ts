import type { Knex } from 'knex';
import type { RequeueSelector } from '../admin/requeue-selector';
import type { Db } from './connection';
import { OrderStatus } from './order-status';

/** The WHERE clause for a selector, with its bindings; `alias.` prefixes the columns. */
function selectorWhere(selector: RequeueSelector): { sql: string; bindings: Knex.Value[] } {
  const parts: string[] = [];
  const bindings: Knex.Value[] = [];
  if (selector.ids) {
    parts.push('id = ANY(?::bigint[])');
    bindings.push(selector.ids as unknown as Knex.Value);
  }
  if (selector.since) {
    parts.push('updated_at >= ?');
    bindings.push(selector.since);
  }
  if (selector.until) {
    parts.push('updated_at <= ?');
    bindings.push(selector.until);
  }
  if (selector.errorLike) {
    // The text is matched literally: % and _ typed by the operator are not wildcards.
    parts.push("last_error ILIKE '%' || replace(replace(replace(?, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'");
    bindings.push(selector.errorLike);
  }
  if (selector.callbackHost) {
    parts.push('callback_host(callback_url) = ?');
    bindings.push(selector.callbackHost);
  }
  return { sql: parts.length ? parts.join(' AND ') : 'true', bindings };
}

/** How many orders the selector matches, by status: what the report says was left alone, and why. */
export async function countSelectedByStatus(db: Db, selector: RequeueSelector): Promise<Map<number, number>> {
  const where = selectorWhere(selector);
  const result = await db.raw<{ rows: { status: number; n: string }[] }>(
    `SELECT status, count(*) AS n FROM orders WHERE ${where.sql} GROUP BY status`,
    where.bindings,
  );
  return new Map(result.rows.map((r) => [r.status, Number(r.n)]));
}

/** The ids the selector matches among `statuses`, in id order, after `afterId`: for dry runs. */
export async function findSelectedIds(db: Db, selector: RequeueSelector, statuses: number[], limit: number): Promise<string[]> {
  const where = selectorWhere(selector);
  const result = await db.raw<{ rows: { id: string }[] }>(
    `SELECT id FROM orders WHERE status = ANY(?::smallint[]) AND ${where.sql} ORDER BY id LIMIT ?`,
    [statuses, ...where.bindings, limit] as Knex.Value[],
  );
  return result.rows.map((r) => r.id);
}

/**
 * Moves the next batch of selected orders back to 5 in one conditional statement: only rows still at
 * one of `statuses` change (the trigger bumps version, drops any lease and NOTIFYs the producers).
 * attempts and next_attempt_at start over; last_error stays as the record of why it had failed until
 * the next attempt replaces it. A keyset over id: batches never rescan, and no lock outlives a batch.
 */
export async function requeueBatch(
  db: Db,
  selector: RequeueSelector,
  statuses: number[],
  afterId: string,
  batchSize: number,
): Promise<{ changedIds: string[]; lastId?: string }> {
  const where = selectorWhere(selector);
  const result = await db.raw<{ rows: { id: string; changed: boolean }[] }>(
    `
    WITH batch AS (
      SELECT id FROM orders
       WHERE status = ANY(?::smallint[]) AND id > ?::bigint AND ${where.sql}
       ORDER BY id
       LIMIT ?
         FOR UPDATE
    ), changed AS (
      UPDATE orders o
         SET status = ?, attempts = 0, next_attempt_at = now()
        FROM batch
       WHERE o.id = batch.id AND o.status = ANY(?::smallint[])
      RETURNING o.id
    )
    SELECT batch.id, changed.id IS NOT NULL AS changed FROM batch LEFT JOIN changed USING (id)
    `,
    [statuses, afterId, ...where.bindings, batchSize, OrderStatus.ready, statuses] as Knex.Value[],
  );
  const rows = result.rows;
  if (rows.length === 0) return { changedIds: [] };
  const lastId = rows.reduce((max, r) => (BigInt(r.id) > BigInt(max) ? r.id : max), rows[0].id);
  return { changedIds: rows.filter((r) => r.changed).map((r) => r.id), lastId };
}

export interface RequeueAudit {
  actor: string;
  selector: RequeueSelector;
  matched: number;
  changed: number;
  dryRun: boolean;
  resendDelivered: boolean;
}

export async function insertRequeueAudit(db: Db, audit: RequeueAudit): Promise<void> {
  await db('requeue_audit').insert({
    actor: audit.actor,
    selector: JSON.stringify(audit.selector),
    matched: audit.matched,
    changed: audit.changed,
    dry_run: audit.dryRun,
    resend_delivered: audit.resendDelivered,
  });
}
