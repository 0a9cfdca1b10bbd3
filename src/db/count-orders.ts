import type { Db } from './connection';
import { OrderStatus } from './order-status';

export interface OrderCounts {
  ready: number;
  delivered: number;
  failed: number;
  /** Statuses that belong to the order system (not yet ready, cancelled...). */
  other: number;
  /** Seconds since the longest-waiting order at 5 became ready; null when none is. */
  oldestReadyAgeSeconds: number | null;
}

/** Counts orders by status, and how long the oldest ready one has waited (the number to watch). */
export async function countOrders(db: Db): Promise<OrderCounts> {
  const byStatus = await db.raw<{ rows: { status: number; n: string }[] }>(
    'SELECT status, count(*) AS n FROM orders GROUP BY status',
  );
  const counts: OrderCounts = { ready: 0, delivered: 0, failed: 0, other: 0, oldestReadyAgeSeconds: null };
  for (const { status, n } of byStatus.rows) {
    if (status === OrderStatus.ready) counts.ready = Number(n);
    else if (status === OrderStatus.delivered) counts.delivered = Number(n);
    else if (status === OrderStatus.failed) counts.failed = Number(n);
    else counts.other += Number(n);
  }
  const oldest = await db.raw<{ rows: { age: string | null }[] }>(
    'SELECT extract(epoch FROM now() - min(ready_since)) AS age FROM orders WHERE status = 5',
  );
  const age = oldest.rows[0]?.age;
  counts.oldestReadyAgeSeconds = age === null || age === undefined ? null : Math.round(Number(age));
  return counts;
}

/**
 * Orders at 5 whose next attempt is their last (`maxAttempts` - 1 done) and comes within `minutes`:
 * if it fails too, they end 7. Read through the producer's index (status 5, by when they are due).
 */
export async function countLastAttemptsDue(db: Db, maxAttempts: number, minutes: number): Promise<number> {
  const { rows } = await db.raw<{ rows: { n: string }[] }>(
    `SELECT count(*) AS n FROM orders
      WHERE status = 5 AND GREATEST(next_attempt_at, lease_until) <= now() + ? * interval '1 minute' AND attempts >= ?`,
    [minutes, maxAttempts - 1],
  );
  return Number(rows[0].n);
}
