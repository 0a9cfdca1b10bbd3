/**
 * The statements of `requeue` (src/admin/requeue.ts): which orders a selector matches, moving them back
 * to 5 a page at a time, and the audit row each run keeps.
 */
import type { Knex } from 'knex';

import type { Db } from './connection';
import { OrderStatus } from './order-status';

/** Which orders a requeue is about. Every field narrows the selection; none widens it. */
export interface RequeueSelector {
  /** Canonical order ids ("7", never "007"). */
  ids?: string[];
  /** updated_at bounds, inclusive: for a failed order, when it failed. */
  since?: Date;
  until?: Date;
  /** Case-insensitive substring of last_error, taken literally (% and _ are not wildcards). */
  errorLike?: string;
  /** Host of callback_url as callback_host() computes it: lower-case, no userinfo or port. */
  callbackHost?: string;
  /** At most this many orders change. */
  limit?: number;
  /** Said on purpose: no narrowing selector, every order at the requeued statuses. Kept for the audit. */
  all?: true;
}

/**
 * The SQL condition for a selector, for the requeue queries (count, keyset page). It never mentions
 * status: each query says which statuses it is about. `limit` is the caller's business.
 */
export function selectionWhere(selector: RequeueSelector): { sql: string; bindings: Knex.Value[] } {
  const parts: string[] = [];
  const bindings: Knex.Value[] = [];
  if (selector.ids) {
    parts.push('id = ANY(?::bigint[])');
    bindings.push(selector.ids);
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
    // ILIKE's escape character is the backslash: escape it, then the wildcards, so the text is literal.
    parts.push("last_error ILIKE '%' || replace(replace(replace(?, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%'");
    bindings.push(selector.errorLike);
  }
  if (selector.callbackHost) {
    parts.push('callback_host(callback_url) = ?');
    bindings.push(selector.callbackHost);
  }
  return { sql: parts.length ? parts.join(' AND ') : 'true', bindings };
}

/**
 * How many orders a requeue selector matches, by status, whatever the status: what a run will change
 * and what it reports as left alone (already ready, already delivered...). Reads only; locks nothing.
 */
export async function countSelectedOrders(db: Db, selector: RequeueSelector): Promise<Map<number, number>> {
  const where = selectionWhere(selector);
  const result = await db.raw<{ rows: { status: number; n: string }[] }>(
    `SELECT status, count(*) AS n FROM orders WHERE ${where.sql} GROUP BY status`,
    where.bindings,
  );
  return new Map(result.rows.map((r) => [r.status, Number(r.n)]));
}

/**
 * One keyset page of the ids a selector matches among `statuses`, in id order, after `afterId`: a
 * requeue's next batch, or a dry run's sample. Pages never rescan what came before and take no lock;
 * the update that follows re-checks the status itself.
 */
export async function findSelectedIds(
  db: Db,
  selector: RequeueSelector,
  statuses: readonly number[],
  afterId: string,
  limit: number,
): Promise<string[]> {
  const where = selectionWhere(selector);
  const result = await db.raw<{ rows: { id: string }[] }>(
    `SELECT id FROM orders
      WHERE status = ANY(?::smallint[]) AND id > ?::bigint AND ${where.sql}
      ORDER BY id LIMIT ?::int`,
    [statuses as unknown as Knex.Value, afterId, ...where.bindings, limit],
  );
  return result.rows.map((r) => r.id);
}

/** The given order ids that name no order, in the order given: reported by requeue, never guessed at. */
export async function findUnknownIds(db: Db, ids: readonly string[]): Promise<string[]> {
  const result = await db.raw<{ rows: { id: string }[] }>(
    `SELECT given.id FROM unnest(?::bigint[]) WITH ORDINALITY AS given(id, n)
      WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = given.id)
      ORDER BY given.n`,
    [ids as unknown as Knex.Value],
  );
  return result.rows.map((r) => r.id);
}

export interface RequeueAuditRow {
  actor: string;
  /** The selector as given, with the statuses it moves: stored as jsonb. */
  selector: Record<string, unknown>;
  matched: number;
  dryRun: boolean;
  resendDelivered: boolean;
}

/**
 * Writes a run's audit row before it changes anything, with changed = 0; each batch then adds its
 * count in its own transaction (recordRequeueProgress). So a run that dies halfway still leaves a row
 * that says who started it and exactly how many orders it had moved. Returns the row's id.
 */
export async function insertRequeueAudit(db: Db, audit: RequeueAuditRow): Promise<string> {
  const result = await db.raw<{ rows: { id: string }[] }>(
    `INSERT INTO requeue_audit (actor, selector, matched, changed, dry_run, resend_delivered)
     VALUES (?, ?::jsonb, ?, 0, ?, ?) RETURNING id`,
    [audit.actor, JSON.stringify(audit.selector), audit.matched, audit.dryRun, audit.resendDelivered],
  );
  return result.rows[0].id;
}

/**
 * Moves the given orders back to 5, those still at one of `statuses` (7, and 6 for a resend), in one
 * conditional statement. Returns the ids it changed: the caller compares them with the ids it asked
 * for, since an order can change between the page that found it and this update (then it is left as
 * it is). The trigger bumps version (so a worker's fenced update from before cannot apply), drops any
 * lease and claim, restarts ready_since, and NOTIFYs the producers when the transaction commits.
 *
 * attempts start over and the order is due now. last_error is kept on purpose: it is what the order
 * last ran into, shown by inspect until the next attempt replaces it (a delivery sets it to NULL).
 * delivered_at of a resent order likewise stays until the next delivery sets it.
 */
export async function requeueOrders(db: Db | Knex.Transaction, ids: readonly string[], statuses: readonly number[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const result = await db.raw<{ rows: { id: string }[] }>(
    `UPDATE orders
        SET status = ?::smallint, attempts = 0, next_attempt_at = now()
      WHERE id = ANY(?::bigint[]) AND status = ANY(?::smallint[])
      RETURNING id`,
    [OrderStatus.ready, ids as unknown as Knex.Value, statuses as unknown as Knex.Value],
  );
  return result.rows.map((r) => r.id);
}

/**
 * Adds one batch's changed orders to its run's audit row. Called in the batch's transaction, so the
 * audit count and the orders it counts commit together or not at all.
 */
export async function recordRequeueProgress(db: Db | Knex.Transaction, auditId: string, changed: number): Promise<void> {
  const result = await db.raw('UPDATE requeue_audit SET changed = changed + ?::int WHERE id = ?::bigint', [changed, auditId]);
  // The row was inserted by this run: not finding it means the audit is broken, and the batch must not commit.
  if (result.rowCount !== 1) throw new Error(`requeue_audit row ${auditId} not found: batch rolled back`);
}
