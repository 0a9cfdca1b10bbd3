import type { Db } from './connection';
import { MAINTENANCE_FENCE, type MaintenanceTurn } from './maintenance';

/**
 * Deletes at most `limit` delivery_log rows that started more than `days` ago (Postgres' clock), the
 * oldest first, found through delivery_log_started_idx; only while `turn` is held. Returns how many.
 * One short statement: it locks the rows it deletes, which nobody writes again, and takes no lock that
 * waits for or holds back the inserts of new attempts.
 */
export async function deleteOldDeliveryLog(db: Db, turn: MaintenanceTurn, days: number, limit: number): Promise<number> {
  const { rowCount } = await db.raw(
    `DELETE FROM delivery_log WHERE id IN (
       SELECT id FROM delivery_log WHERE started_at < now() - ? * interval '1 day' ORDER BY started_at LIMIT ?
     ) AND ${MAINTENANCE_FENCE}`,
    [days, limit, turn.name, turn.token],
  );
  return rowCount ?? 0;
}
