import type { Knex } from 'knex';
import type { Db } from './connection';

/**
 * Adds one batch's changed orders to its run's audit row. Called in the batch's transaction, so the
 * audit count and the orders it counts commit together or not at all.
 */
export async function recordRequeueProgress(db: Db | Knex.Transaction, auditId: string, changed: number): Promise<void> {
  const result = await db.raw('UPDATE requeue_audit SET changed = changed + ?::int WHERE id = ?::bigint', [changed, auditId]);
  // The row was inserted by this run: not finding it means the audit is broken, and the batch must not commit.
  if (result.rowCount !== 1) throw new Error(`requeue_audit row ${auditId} not found: batch rolled back`);
}
