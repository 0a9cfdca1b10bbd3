import type { Db } from './connection';

export interface RetryingHost {
  host: string;
  /** Attempts at orders to this host in the window that ended in a retry. */
  retries: number;
}

/**
 * The callback hosts with the most retried attempts in the last `minutes`: a partner in trouble shows
 * here before its orders end 7. Reads the window of delivery_log through its started_at index and looks
 * each attempt's order up by primary key, so the cost follows the window, not the tables. The host is
 * the order's callback_url now, which is the one the retries went to unless the order system changed it.
 */
export async function findRetryingHosts(db: Db, minutes: number, limit = 10): Promise<RetryingHost[]> {
  const result = await db.raw<{ rows: { host: string | null; n: string }[] }>(
    `SELECT callback_host(o.callback_url) AS host, count(*) AS n
       FROM delivery_log l JOIN orders o ON o.id = l.order_id
      WHERE l.started_at > now() - (?::int * interval '1 minute') AND l.outcome = 'retry' AND NOT l.superseded
      GROUP BY 1 ORDER BY n DESC, host LIMIT ?::int`,
    [minutes, limit],
  );
  return result.rows.map((r) => ({ host: r.host ?? '(not a URL)', retries: Number(r.n) }));
}
