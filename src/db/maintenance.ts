/**
 * The periodic tasks' turns (one replica at a time, by Postgres' clock), and the delivery log
 * retention's delete, which writes only while its turn is held.
 */
import type { Db } from './connection';

/** A replica's hold on one run of a periodic task (maintenance_turns, migration 010). */
export interface MaintenanceTurn {
  name: string;
  token: string;
}

/**
 * Takes the turn of task `turn.name` for `holdMs` (Postgres' clock) when nobody holds it and its last run
 * started at least `everyMs` ago: of all the replicas that try, one runs the task per interval. True when
 * taken.
 */
export async function takeMaintenanceTurn(
  db: Db,
  turn: MaintenanceTurn,
  holder: string,
  everyMs: number,
  holdMs: number,
): Promise<boolean> {
  const { rows } = await db.raw(
    `INSERT INTO maintenance_turns AS t (name, holder, token, held_until, last_started_at)
     VALUES (?, ?, ?, now() + ? * interval '1 millisecond', now())
     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = EXCLUDED.token,
                                      held_until = EXCLUDED.held_until, last_started_at = now()
      WHERE t.held_until <= now() AND t.last_started_at <= now() - ? * interval '1 millisecond'
     RETURNING 1 AS taken`,
    [turn.name, holder, turn.token, holdMs, everyMs],
  );
  return rows.length === 1;
}

/** Holds the turn `holdMs` longer from now, if it is still ours; false when it is not (it ran out). */
export async function extendMaintenanceTurn(db: Db, turn: MaintenanceTurn, holdMs: number): Promise<boolean> {
  const { rowCount } = await db.raw(
    `UPDATE maintenance_turns SET held_until = now() + ? * interval '1 millisecond' WHERE name = ? AND token = ? AND held_until > now()`,
    [holdMs, turn.name, turn.token],
  );
  return rowCount === 1;
}

/**
 * Ends the turn, if it is still ours: the next run is due `everyMs` after this one started, or at once
 * with `dueAgain` (the run stopped with work left).
 */
export async function endMaintenanceTurn(db: Db, turn: MaintenanceTurn, dueAgain = false): Promise<void> {
  await db.raw(
    `UPDATE maintenance_turns SET held_until = now()${dueAgain ? ", last_started_at = '-infinity'" : ''}` +
      ' WHERE name = ? AND token = ? AND held_until > now()',
    [turn.name, turn.token],
  );
}

/**
 * The condition a task's writes add, with knex's `?` placeholders for the turn's name and token: they
 * write only while the turn is theirs by Postgres' clock, so a replica that froze past its turn and woke
 * after another took over writes nothing.
 */
export const MAINTENANCE_FENCE = 'EXISTS (SELECT 1 FROM maintenance_turns WHERE name = ? AND token = ?::uuid AND held_until > now())';

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
