import type { Knex } from 'knex';
import type { Db } from './connection';
import { OrderStatus } from './order-status';

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
