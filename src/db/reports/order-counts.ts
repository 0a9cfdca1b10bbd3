/**
 * Orders counted by status and by partner, for stats, the status page and the order gauges. Each is
 * bounded by an index, the planner's statistics or a timeout, never by the size of the table.
 */
import type { Db } from '../connection';
import { OrderStatus } from '../order-status';

/**
 * Ready orders counted one by one up to this many (an index-only walk of orders_ready_since_idx, which
 * visits the table only for pages not marked all-visible, at most as many rows); past it, the index's
 * size as of its last VACUUM/ANALYZE. Bounds the count's cost when a backlog grows into the millions.
 */
export const READY_COUNT_CAP = 100_000;

/** Due ready orders looked at, at most, for the orders whose last attempt comes soon. */
export const LAST_ATTEMPTS_SCAN_CAP = 2000;

export interface OrderCounts {
  /** Orders at 5: exact, unless `readyAtLeast` (more than READY_COUNT_CAP; then an estimate, at least the cap). */
  ready: number;
  readyAtLeast: boolean;
  /**
   * Orders at 6, at 7, and at any other status, as the planner estimates them: rows of the table at its
   * last (auto)ANALYZE × the share of the status in ANALYZE's sample. Null until orders was first analyzed.
   */
  delivered: number | null;
  failed: number | null;
  other: number | null;
  /** Seconds since the longest-waiting order at 5 became ready; null when none is. */
  oldestReadyAgeSeconds: number | null;
}

/** OrderCounts with the oldest ready order as a time too, as order_gauges keeps them. */
export interface OrderCountsAt extends OrderCounts {
  oldestReadySince: Date | null;
}

/**
 * Counts orders by status, and when the oldest ready one became ready (the number to watch). Its cost
 * does not grow with the orders at 6 and 7: it reads the partial indexes on status 5 (bounded by
 * READY_COUNT_CAP) and the planner's statistics, never the table.
 */
export async function countOrders(db: Db): Promise<OrderCountsAt> {
  // ORDER BY ready_since keeps the walk on orders_ready_since_idx: without it, a planner that finds
  // many orders at 5 may read the table from its start until it has counted the cap.
  const capped = await db.raw<{ rows: { n: number }[] }>(
    'SELECT count(*)::int AS n FROM (SELECT 1 FROM orders WHERE status = 5 ORDER BY ready_since LIMIT ?) ready',
    [READY_COUNT_CAP],
  );
  const oldest = await db.raw<{ rows: { since: Date | null; age: number | null }[] }>(
    'SELECT min(ready_since) AS since, extract(epoch FROM now() - min(ready_since))::float8 AS age FROM orders WHERE status = 5',
  );
  const stats = await db.raw<{ rows: ({ rows: number; index_rows: number | null } & StatusStatistics)[] }>(`
    SELECT c.reltuples::float8 AS rows, i.reltuples::float8 AS index_rows, s.most_common_vals::text AS vals,
           s.most_common_freqs::float8[] AS freqs, s.n_distinct::float8 AS distinct, s.null_frac::float8 AS null_share
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_class i ON i.oid = to_regclass(quote_ident(n.nspname) || '.orders_ready_since_idx')
      LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = 'status'
     WHERE c.oid = 'orders'::regclass`);
  const ready = capped.rows[0].n;
  const readyAtLeast = ready >= READY_COUNT_CAP;
  const { rows, index_rows: indexRows, ...statistics } = stats.rows[0];
  const estimates = estimateByStatus(rows, statistics);
  return {
    ready: readyAtLeast ? Math.max(ready, Math.round(indexRows ?? 0)) : ready,
    readyAtLeast,
    ...estimates,
    oldestReadySince: oldest.rows[0].since,
    oldestReadyAgeSeconds: oldest.rows[0].age === null ? null : Math.max(0, Math.round(oldest.rows[0].age)),
  };
}

/** pg_stats' row for orders.status; all null before the first ANALYZE. */
export interface StatusStatistics {
  /** most_common_vals as text: '{6,7,5}'. */
  vals: string | null;
  freqs: number[] | null;
  /** n_distinct: how many statuses, or (negative) their share of the rows. */
  distinct: number | null;
  null_share: number | null;
}

/**
 * Orders at 6, 7 and other statuses as the planner estimates "status = x": `rows` (pg_class.reltuples,
 * -1 when never analyzed) × the status' frequency among ANALYZE's most common values, or, for a status
 * not among them, the rest of the rows shared evenly by the other distinct statuses.
 */
export function estimateByStatus(rows: number, statistics: StatusStatistics): Pick<OrderCounts, 'delivered' | 'failed' | 'other'> {
  if (rows < 0) return { delivered: null, failed: null, other: null };
  const statuses = statistics.vals === null ? [] : statistics.vals.replace(/[{}]/g, '').split(',').filter(Boolean).map(Number);
  const share = new Map(statuses.map((status, i) => [status, statistics.freqs?.[i] ?? 0]));
  const common = [...share.values()].reduce((sum, f) => sum + f, 0);
  const distinct = statistics.distinct === null ? 0 : statistics.distinct >= 0 ? statistics.distinct : -statistics.distinct * rows;
  const rest = Math.max(0, 1 - common - (statistics.null_share ?? 0));
  const uncommonShare = distinct > statuses.length ? rest / (distinct - statuses.length) : 0;
  const of = (status: number) => Math.round(rows * (share.get(status) ?? uncommonShare));
  const delivered = of(OrderStatus.delivered);
  const failed = of(OrderStatus.failed);
  return { delivered, failed, other: Math.max(0, Math.round(rows) - delivered - failed - of(OrderStatus.ready)) };
}

export interface LastAttemptsDue {
  count: number;
  /** More due orders than LAST_ATTEMPTS_SCAN_CAP: `count` is of the first of them only, a lower bound. */
  atLeast: boolean;
}

/**
 * Orders at 5 whose next attempt is their last (`maxAttempts` - 1 done) and comes within `minutes`:
 * if it fails too, they end 7. Reads the due orders through the producer's index (status 5, by when they
 * are due), the soonest first, and at most LAST_ATTEMPTS_SCAN_CAP of them: the attempts are in the table.
 */
export async function countLastAttemptsDue(db: Db, maxAttempts: number, minutes: number): Promise<LastAttemptsDue> {
  return db.transaction(async (trx) => {
    // The cap bounds the walk only if it follows orders_ready_idx, which hands the due orders over in
    // order. With a few thousand ready orders the planner prefers to read all of them (through another
    // index on status 5) and sort; without a sort, it cannot.
    await trx.raw('SET LOCAL enable_sort = off');
    const { rows } = await trx.raw<{ rows: { n: number; scanned: number }[] }>(
      `SELECT count(*) FILTER (WHERE attempts >= ?)::int AS n, count(*)::int AS scanned FROM (
         SELECT attempts FROM orders
          WHERE status = 5 AND GREATEST(next_attempt_at, lease_until) <= now() + ? * interval '1 minute'
          ORDER BY GREATEST(next_attempt_at, lease_until), id LIMIT ?) due`,
      [maxAttempts - 1, minutes, LAST_ATTEMPTS_SCAN_CAP],
    );
    return { count: rows[0].n, atLeast: rows[0].scanned >= LAST_ATTEMPTS_SCAN_CAP };
  });
}

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
