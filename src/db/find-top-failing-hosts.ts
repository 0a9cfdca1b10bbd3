import type { Db } from './connection';

export interface FailingHost {
  host: string;
  /** Orders to this host that ended 7. */
  failures: number;
  /** The host answered 410 Gone: the endpoint no longer exists, every order to it will fail. */
  gone: boolean;
}

/** The callback hosts with the most orders failed for good. */
export async function findTopFailingHosts(db: Db, limit = 10): Promise<FailingHost[]> {
  const result = await db.raw<{ rows: { host: string | null; n: string; gone: boolean }[] }>(
    `SELECT callback_host(callback_url) AS host, count(*) AS n, bool_or(last_error LIKE 'HTTP 410%') AS gone FROM orders
      WHERE status = 7 GROUP BY 1 ORDER BY n DESC, host LIMIT ?`,
    [limit],
  );
  return result.rows.map((r) => ({ host: r.host ?? '(not a URL)', failures: Number(r.n), gone: r.gone }));
}
