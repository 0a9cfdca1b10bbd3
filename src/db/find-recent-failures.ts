import type { Db } from './connection';
import { FAILURES_WINDOW_HOURS, ORDER_AT_7 } from './reports/recent-outcomes';

export interface RecentFailure {
  orderId: string;
  failedAt: string;
  error: string | null;
  host: string | null;
}

/**
 * The orders that most recently ended 7 (within FAILURES_WINDOW_HOURS, and still at 7), with why. Reads
 * the window's failed attempts through delivery_log's started_at index and looks each order up by
 * primary key: the cost follows the failures of a day, not the years of orders at 7. Hosts only: a full
 * URL may carry credentials.
 */
export async function findRecentFailures(db: Db, limit = 20): Promise<RecentFailure[]> {
  const result = await db.raw<{ rows: { id: string; updated_at: Date; last_error: string | null; host: string | null }[] }>(
    `SELECT o.id, o.updated_at, o.last_error, callback_host(o.callback_url) AS host
       FROM (SELECT DISTINCT ON (order_id) order_id, started_at FROM delivery_log
              WHERE started_at > now() - ? * interval '1 hour' AND outcome = 'failed' AND NOT superseded
              ORDER BY order_id, started_at DESC) l
       CROSS JOIN LATERAL (${ORDER_AT_7}) o
      ORDER BY l.started_at DESC, o.id DESC LIMIT ?`,
    [FAILURES_WINDOW_HOURS, limit],
  );
  return result.rows.map((r) => ({ orderId: r.id, failedAt: r.updated_at.toISOString(), error: r.last_error, host: r.host }));
}
