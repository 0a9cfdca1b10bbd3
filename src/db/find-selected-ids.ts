import type { Knex } from 'knex';
import type { Db } from './connection';
import { selectionWhere, type RequeueSelector } from './requeue';

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
