import type { Db } from './connection';

export interface MinuteCounts {
  /** Start of the minute, ISO. */
  minute: string;
  delivered: number;
  failed: number;
}

/** Delivered and failed-for-good attempts per minute over the last `minutes`, zero-filled, oldest first. */
export async function deliveriesPerMinute(db: Db, minutes = 60): Promise<MinuteCounts[]> {
  const result = await db.raw<{ rows: { minute: Date; delivered: string; failed: string }[] }>(
    `
    WITH minutes AS (
      SELECT generate_series(date_trunc('minute', now()) - (? - 1) * interval '1 minute', date_trunc('minute', now()), interval '1 minute') AS minute
    )
    SELECT m.minute,
           count(*) FILTER (WHERE l.outcome = 'delivered') AS delivered,
           count(*) FILTER (WHERE l.outcome = 'failed') AS failed
      FROM minutes m
      LEFT JOIN delivery_log l
        ON l.started_at >= m.minute AND l.started_at < m.minute + interval '1 minute' AND NOT l.superseded
     GROUP BY m.minute ORDER BY m.minute
    `,
    [minutes],
  );
  return result.rows.map((r) => ({ minute: r.minute.toISOString(), delivered: Number(r.delivered), failed: Number(r.failed) }));
}
