import type { Db } from '../connection';
import { MAINTENANCE_FENCE, type MaintenanceTurn } from '../maintenance';
import type { OrderCounts, OrderCountsAt } from './order-counts';

export interface StoredOrderGauges extends OrderCounts {
  /** How long ago they were computed, by Postgres' clock. */
  computedSecondsAgo: number;
}

/** Keeps `counts` as the current order gauges, if `turn` is still held; false when it was not. */
export async function storeOrderGauges(db: Db, turn: MaintenanceTurn, counts: OrderCountsAt): Promise<boolean> {
  const { rows } = await db.raw(
    `INSERT INTO order_gauges AS g (id, computed_at, ready, ready_at_least, delivered, failed, other, oldest_ready_since)
     SELECT true, now(), ?, ?, ?, ?, ?, ?::timestamptz WHERE ${MAINTENANCE_FENCE}
     ON CONFLICT (id) DO UPDATE SET computed_at = EXCLUDED.computed_at, ready = EXCLUDED.ready, ready_at_least = EXCLUDED.ready_at_least,
       delivered = EXCLUDED.delivered, failed = EXCLUDED.failed, other = EXCLUDED.other, oldest_ready_since = EXCLUDED.oldest_ready_since
     RETURNING 1 AS stored`,
    [counts.ready, counts.readyAtLeast, counts.delivered, counts.failed, counts.other, counts.oldestReadySince, turn.name, turn.token],
  );
  return rows.length === 1;
}

/**
 * The order gauges as last computed, the oldest ready order's age as of now; undefined before the
 * first computation. One row read by its primary key: what every scrape costs.
 */
export async function readOrderGauges(db: Db): Promise<StoredOrderGauges | undefined> {
  const { rows } = await db.raw<{
    rows: {
      ready: string;
      ready_at_least: boolean;
      delivered: string | null;
      failed: string | null;
      other: string | null;
      age: number | null;
      computed_ago: number;
    }[];
  }>(
    `SELECT ready, ready_at_least, delivered, failed, other,
            extract(epoch FROM now() - oldest_ready_since)::float8 AS age, extract(epoch FROM now() - computed_at)::float8 AS computed_ago
       FROM order_gauges WHERE id`,
  );
  const row = rows[0];
  if (!row) return undefined;
  const count = (n: string | null) => (n === null ? null : Number(n));
  return {
    ready: Number(row.ready),
    readyAtLeast: row.ready_at_least,
    delivered: count(row.delivered),
    failed: count(row.failed),
    other: count(row.other),
    oldestReadyAgeSeconds: row.age === null ? null : Math.max(0, Math.round(row.age)),
    computedSecondsAgo: Math.max(0, row.computed_ago),
  };
}
