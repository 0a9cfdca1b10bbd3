import { MAX_URL_LENGTH } from './claim-order';
import type { Db } from './connection';
import { PreparedStatement } from './prepared-statement';
import { PRODUCER_FENCE, type ProducerFence } from './producer-lease';

/** A position in orders_ready_idx. Microseconds since the epoch keep Postgres' full precision. */
export interface LeaseCursor {
  visibleAtUs: bigint;
  id: bigint;
}

/**
 * An order's shard in SQL, with knex's `?` for the number of shards: the remainder of id by it, without
 * its sign (Postgres' mod() keeps the sign of id, and an order id may be negative). shardOf() in
 * src/queue/shards.ts is the same in TypeScript.
 */
export const SHARD_OF_ID = 'abs(mod(id, ?::bigint))';

/** One shard of the orders: those whose id's remainder by `count`, without its sign, is `index`. */
export interface Shard {
  index: number;
  count: number;
}

export interface LeasedPage {
  ids: string[];
  /** Each leased order's callback URL as it was read: a routing hint for the job, never trusted as truth. */
  callbackUrls: Map<string, string | null>;
  /** Where the next page starts; undefined when this page was empty. */
  next?: LeaseCursor;
  /**
   * Whether more orders may be visible now: the page was full, or, read partner by partner, some partner
   * took its whole share.
   */
  mayHaveMore: boolean;
}

/** Whether some partner (or the orders without one) took its whole share of a page read by partner. */
function filledAShare(rows: { quota?: number; origin?: string | null }[]): boolean {
  const taken = new Map<string | null, number>();
  for (const row of rows) {
    const n = (taken.get(row.origin ?? null) ?? 0) + 1;
    if (n >= Number(row.quota)) return true;
    taken.set(row.origin ?? null, n);
  }
  return false;
}

/**
 * The callback URL as the producer reads it, for the job's routing hint: not a URL too long to be one
 * (a megabyte in a bad row would be loaded for nothing; the worker fails that row).
 */
const ROUTING_URL = `CASE WHEN length(o.callback_url) <= ${MAX_URL_LENGTH} THEN o.callback_url END AS callback_url`;

/**
 * The lease statement, with knex's `?` placeholders: the cursor (microseconds, id) when `afterCursor`,
 * then the shard (count, index), then the producer's fence (PRODUCER_FENCE: its lease's name and token), the page size and the
 * lease's lifetime in milliseconds. Exported for the test that checks how
 * Postgres plans it.
 */
export function leaseSql(afterCursor: boolean): string {
  const cursorClause = afterCursor
    ? `AND (GREATEST(next_attempt_at, lease_until), id) > ('epoch'::timestamptz + ?::bigint * interval '1 microsecond', ?::bigint)`
    : '';
  return `
    WITH page AS (
      SELECT id, (extract(epoch FROM GREATEST(next_attempt_at, lease_until)) * 1000000)::bigint AS visible_us
        FROM orders
       WHERE status = 5
         AND GREATEST(next_attempt_at, lease_until) <= now()
         ${cursorClause}
         AND ${SHARD_OF_ID} = ?::bigint
         AND ${PRODUCER_FENCE}
       ORDER BY GREATEST(next_attempt_at, lease_until), id
       LIMIT ?
         FOR UPDATE SKIP LOCKED
    )
    UPDATE orders o
       SET lease_until = now() + (? * interval '1 millisecond'),
           -- A visible order's claim, if any, has run out: its worker is gone or superseded. Clearing
           -- it lets the next worker claim while this queue lease is still running.
           claim_token = NULL,
           claim_until = NULL
      FROM page
     WHERE o.id = page.id
    RETURNING o.id, page.visible_us, ${ROUTING_URL}
    `;
}

/**
 * The lease statement while some partners are held or half-open, with knex's `?` placeholders: the
 * shard (count, index), the per-partner limits (jsonb: origin -> how many of its orders this page may take), the page size, the
 * producer's fence (its lease's name and token), and the lease's lifetime in milliseconds.
 *
 * It reads orders_ready_origin_idx partner by partner: a skip scan finds each origin with orders at 5
 * (one index descent each, however many orders it has), and one more descent each tells which have
 * orders visible now. The page is shared among those (a held one does not count): each takes up to
 * its share, oldest first, and a half-open one no more than its limit. So a page reads about a page of
 * rows however many partners have backlogs, and a held partner (limit 0) costs its descents: its
 * backlog is neither read nor written. Orders whose URL has no origin are bad rows, leased so a worker
 * can fail them. A page shorter than its size may not be the end: `quota` and `origin` come back with
 * each row, so the caller can tell whether a partner filled its share. Exported for the test that checks
 * how Postgres plans it.
 */
export const LEASE_BY_PARTNER_SQL = `
  WITH RECURSIVE shard AS (SELECT ?::bigint AS n, ?::bigint AS k),
  origins AS (
    (SELECT callback_origin(callback_url) AS origin FROM orders
      WHERE status = 5 AND callback_origin(callback_url) IS NOT NULL
      ORDER BY callback_origin(callback_url) LIMIT 1)
    UNION ALL
    SELECT (SELECT callback_origin(o.callback_url) FROM orders o
             WHERE o.status = 5 AND callback_origin(o.callback_url) > origins.origin
             ORDER BY callback_origin(o.callback_url) LIMIT 1)
      FROM origins WHERE origins.origin IS NOT NULL
  ),
  limits AS (SELECT key AS origin, value::int AS n FROM jsonb_each_text(?::jsonb)),
  allowed AS (
    SELECT origins.origin, (SELECT min(limits.n) FROM limits WHERE limits.origin = origins.origin) AS n
      FROM origins WHERE origins.origin IS NOT NULL
  ),
  sharing AS (
    SELECT allowed.origin, allowed.n FROM allowed
     WHERE COALESCE(allowed.n, 1) > 0
       -- A subquery per partner, not EXISTS: Postgres may turn EXISTS into a join that reads every
       -- visible order through orders_ready_idx and works out its origin, instead of one descent each.
       AND (SELECT true FROM orders o WHERE o.status = 5 AND callback_origin(o.callback_url) = allowed.origin
              AND GREATEST(o.next_attempt_at, o.lease_until) <= now()
              AND abs(mod(o.id, (SELECT n FROM shard))) = (SELECT k FROM shard)
            LIMIT 1)
  ),
  quota AS (SELECT ceil(?::numeric / GREATEST(1, (SELECT count(*) FROM sharing)))::int AS k),
  candidates AS (
    SELECT c.id, c.visible FROM sharing
     CROSS JOIN LATERAL (
       SELECT o.id, GREATEST(o.next_attempt_at, o.lease_until) AS visible FROM orders o
        WHERE o.status = 5 AND callback_origin(o.callback_url) = sharing.origin
          AND GREATEST(o.next_attempt_at, o.lease_until) <= now()
          AND abs(mod(o.id, (SELECT n FROM shard))) = (SELECT k FROM shard)
        ORDER BY GREATEST(o.next_attempt_at, o.lease_until), o.id
        LIMIT LEAST((SELECT k FROM quota), COALESCE(sharing.n, (SELECT k FROM quota)))
     ) c
    UNION ALL
    (SELECT o.id, GREATEST(o.next_attempt_at, o.lease_until) FROM orders o
      WHERE o.status = 5 AND callback_origin(o.callback_url) IS NULL AND GREATEST(o.next_attempt_at, o.lease_until) <= now()
        AND abs(mod(o.id, (SELECT n FROM shard))) = (SELECT k FROM shard)
      ORDER BY GREATEST(o.next_attempt_at, o.lease_until), o.id LIMIT (SELECT k FROM quota))
  ),
  page AS (
    -- Each candidate by its primary key, checked again on the row as it is now (FOR UPDATE): as
    -- id = ANY(...), Postgres may look the candidates up along orders_ready_idx, whose second column is
    -- the id, and walk every visible order for each.
    SELECT o.id, (extract(epoch FROM o.visible) * 1000000)::bigint AS visible_us
      FROM candidates c
     CROSS JOIN LATERAL (
       SELECT o.id, GREATEST(o.next_attempt_at, o.lease_until) AS visible FROM orders o
        WHERE o.id = c.id AND o.status = 5 AND GREATEST(o.next_attempt_at, o.lease_until) <= now()
          FOR UPDATE SKIP LOCKED
     ) o
     WHERE ${PRODUCER_FENCE}
  )
  UPDATE orders o
     SET lease_until = now() + (? * interval '1 millisecond'), claim_token = NULL, claim_until = NULL
    FROM page
   WHERE o.id = page.id
  RETURNING o.id, page.visible_us, ${ROUTING_URL}, (SELECT k FROM quota) AS quota, callback_origin(o.callback_url) AS origin
  `;

type LeasedRow = { id: string; visible_us: string; callback_url: string | null; quota?: number; origin?: string | null };
const leaseFromFront = new PreparedStatement<LeasedRow>('order_callbacks_lease_from_front', leaseSql(false));
const leaseAfter = new PreparedStatement<LeasedRow>('order_callbacks_lease_after', leaseSql(true));
const leaseByPartner = new PreparedStatement<LeasedRow>('order_callbacks_lease_by_partner', LEASE_BY_PARTNER_SQL);

/**
 * Takes the next page of visible orders at 5 (due, and held by nobody) and hides them from other
 * producers for `leaseMs` by setting lease_until. A keyset page over orders_ready_idx: it starts after
 * `after` (or at the front; ScanStart decides), never OFFSET, so its cost does not grow with the rows
 * before it, only with the dead index entries between `after` and the first visible order.
 * SKIP LOCKED lets concurrent producers and claiming workers pass each other instead of queueing.
 * Only `shard`'s orders, and nothing unless `fence` is that shard's producer lease and current (PRODUCER_FENCE).
 * `partnerLimits` (origin -> most of its orders to take; 0 while it is held): when given, the page is
 * read partner by partner (LEASE_BY_PARTNER_SQL) from the front, and `after` is not used.
 * If the process dies before the jobs reach Redis, the lease runs out and the orders come back.
 */
export async function leaseReadyOrders(
  db: Db,
  limit: number,
  leaseMs: number,
  fence: ProducerFence,
  shard: Shard,
  after?: LeaseCursor,
  partnerLimits?: ReadonlyMap<string, number>,
): Promise<LeasedPage> {
  const byPartner = partnerLimits !== undefined && partnerLimits.size > 0;
  const result = byPartner
    ? await leaseByPartner.run(db, [
        shard.count,
        shard.index,
        JSON.stringify(Object.fromEntries(partnerLimits)),
        limit,
        fence.name,
        fence.token,
        leaseMs,
      ])
    : after
      ? await leaseAfter.run(db, [
          after.visibleAtUs.toString(),
          after.id.toString(),
          shard.count,
          shard.index,
          fence.name,
          fence.token,
          limit,
          leaseMs,
        ])
      : await leaseFromFront.run(db, [shard.count, shard.index, fence.name, fence.token, limit, leaseMs]);
  const rows = result.rows;
  if (rows.length === 0) return { ids: [], callbackUrls: new Map(), mayHaveMore: false };
  // RETURNING does not keep the page's order: the cursor is the largest key of the page.
  let next: LeaseCursor = { visibleAtUs: BigInt(rows[0].visible_us), id: BigInt(rows[0].id) };
  for (const row of rows) {
    const key = { visibleAtUs: BigInt(row.visible_us), id: BigInt(row.id) };
    if (key.visibleAtUs > next.visibleAtUs || (key.visibleAtUs === next.visibleAtUs && key.id > next.id)) next = key;
  }
  return {
    ids: rows.map((row) => row.id),
    callbackUrls: new Map(rows.map((row) => [row.id, row.callback_url])),
    next,
    mayHaveMore: byPartner ? filledAShare(rows) : rows.length >= limit,
  };
}
