import type { Db } from './connection';

export interface PartnerBacklog {
  /** callback_origin(callback_url); null for URLs without one (bad rows). */
  origin: string | null;
  ready: number;
  /** Seconds since its longest-waiting ready order became ready. */
  oldestReadyAgeSeconds: number;
}

/**
 * Orders at 5 per partner, read through orders_ready_origin_idx: every ready order is counted, so its cost
 * grows with the backlog (an admin command's, not a hot path's), and it gives up after `timeoutMs`.
 */
export async function readyByPartner(db: Db, timeoutMs = 10_000): Promise<PartnerBacklog[]> {
  return db.transaction(async (trx) => {
    await trx.raw(`SET LOCAL statement_timeout = ${Math.round(timeoutMs)}`);
    const { rows } = await trx.raw<{ rows: { origin: string | null; ready: string; age: string }[] }>(
      `SELECT callback_origin(callback_url) AS origin, count(*) AS ready, extract(epoch FROM now() - min(ready_since)) AS age
         FROM orders WHERE status = 5 GROUP BY 1`,
    );
    return rows.map((row) => ({ origin: row.origin, ready: Number(row.ready), oldestReadyAgeSeconds: Math.round(Number(row.age)) }));
  });
}
