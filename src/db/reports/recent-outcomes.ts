/**
 * What the last minutes and hours of delivery_log say, for stats and the status page: outcomes,
 * deliveries per minute, retrying and failing hosts, the latest failures. Each reads its window through
 * delivery_log's started_at index, so its cost follows the window, not the table.
 */
import type { Db } from '../connection';

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
      SELECT generate_series(date_trunc('minute', now()) - (? - 1) * interval '1 minute', date_trunc('minute', now()),
                             interval '1 minute') AS minute
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
