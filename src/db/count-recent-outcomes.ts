import type { Db } from './connection';

export interface RecentOutcomes {
  windowMinutes: number;
  delivered: number;
  retried: number;
  failed: number;
}

/** Attempts of the last `minutes` by outcome, from the delivery log (indexed on started_at). */
export async function countRecentOutcomes(db: Db, minutes: number): Promise<RecentOutcomes> {
  const result = await db.raw<{ rows: { outcome: string; n: string }[] }>(
    `SELECT outcome, count(*) AS n FROM delivery_log
      WHERE started_at > now() - (? * interval '1 minute') AND NOT superseded
      GROUP BY outcome`,
    [minutes],
  );
  const by = new Map(result.rows.map((r) => [r.outcome, Number(r.n)]));
  return { windowMinutes: minutes, delivered: by.get('delivered') ?? 0, retried: by.get('retry') ?? 0, failed: by.get('failed') ?? 0 };
}
