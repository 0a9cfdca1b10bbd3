import type { Db } from './connection';

export interface RecentFailure {
  orderId: string;
  failedAt: string;
  error: string | null;
  host: string | null;
}

/** The orders that most recently ended 7, with why. Hosts only: a full URL may carry credentials. */
export async function findRecentFailures(db: Db, limit = 20): Promise<RecentFailure[]> {
  const result = await db.raw<{ rows: { id: string; updated_at: Date; last_error: string | null; host: string | null }[] }>(
    `SELECT id, updated_at, last_error, callback_host(callback_url) AS host FROM orders
      WHERE status = 7 ORDER BY updated_at DESC LIMIT ?`,
    [limit],
  );
  return result.rows.map((r) => ({ orderId: r.id, failedAt: r.updated_at.toISOString(), error: r.last_error, host: r.host }));
}
