import type { Db } from './connection';
import { selectionWhere, type RequeueSelector } from './requeue';

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
