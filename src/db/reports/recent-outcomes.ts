import type { Db } from '../connection';

export interface FailingHost {
  host: string;
  /** Orders to this host that ended 7 within the window (and are still at 7). */
  failures: number;
  /** The host answered 410 Gone: the endpoint no longer exists, every order to it will fail. */
  gone: boolean;
}

/** How far back the failing hosts and the recent failures look. */
export const FAILURES_WINDOW_HOURS = 24;

/**
 * The order of a failed attempt `l`, if it is still at 7: a lookup by primary key per attempt. LIMIT 1
 * keeps it one (a subquery with a LIMIT is not merged into a join): a planner that expects more of the
 * window than there is would otherwise hash-join it with every order at 7, read from the table.
 */
export const ORDER_AT_7 = 'SELECT id, updated_at, last_error, callback_url FROM orders WHERE id = l.order_id AND status = 7 LIMIT 1';

/**
 * The callback hosts with the most orders failed for good in the last FAILURES_WINDOW_HOURS. Reads the
 * window's failed attempts through delivery_log's started_at index and looks each order up by primary
 * key: the cost follows the failures of a day, not the years of orders at 7.
 */
export async function findTopFailingHosts(db: Db, limit = 10): Promise<FailingHost[]> {
  const result = await db.raw<{ rows: { host: string | null; n: string; gone: boolean }[] }>(
    `SELECT callback_host(o.callback_url) AS host, count(DISTINCT o.id) AS n, bool_or(o.last_error LIKE 'HTTP 410%') AS gone
       FROM delivery_log l CROSS JOIN LATERAL (${ORDER_AT_7}) o
      WHERE l.started_at > now() - ? * interval '1 hour' AND l.outcome = 'failed' AND NOT l.superseded
      GROUP BY 1 ORDER BY n DESC, host LIMIT ?`,
    [FAILURES_WINDOW_HOURS, limit],
  );
  return result.rows.map((r) => ({ host: r.host ?? '(not a URL)', failures: Number(r.n), gone: r.gone }));
}
