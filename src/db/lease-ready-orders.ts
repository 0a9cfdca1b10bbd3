import type { Db } from './connection';
import { PreparedStatement } from './prepared-statement';

/** A position in orders_ready_idx. Microseconds since the epoch keep Postgres' full precision. */
export interface LeaseCursor {
  visibleAtUs: bigint;
  id: bigint;
}

export interface LeasedPage {
  ids: string[];
  /** Each leased order's callback URL as it was read: a routing hint for the job, never trusted as truth. */
  callbackUrls: Map<string, string | null>;
  /** Where the next page starts; undefined when this page was empty. */
  next?: LeaseCursor;
}

/**
 * The lease statement, with knex's `?` placeholders: the cursor (microseconds, id) when `afterCursor`,
 * then the page size and the lease's lifetime in milliseconds. Exported for the test that checks how
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
    RETURNING o.id, page.visible_us, o.callback_url
    `;
}

type LeasedRow = { id: string; visible_us: string; callback_url: string | null };
const leaseFromFront = new PreparedStatement<LeasedRow>('order_callbacks_lease_from_front', leaseSql(false));
const leaseAfter = new PreparedStatement<LeasedRow>('order_callbacks_lease_after', leaseSql(true));

/**
 * Takes the next page of visible orders at 5 (due, and held by nobody) and hides them from other
 * producers for `leaseMs` by setting lease_until. A keyset page over orders_ready_idx: it starts after
 * `after` (or at the front; ScanStart decides), never OFFSET, so its cost does not grow with the rows
 * before it, only with the dead index entries between `after` and the first visible order.
 * SKIP LOCKED lets concurrent producers and claiming workers pass each other instead of queueing.
 * If the process dies before the jobs reach Redis, the lease runs out and the orders come back.
 */
export async function leaseReadyOrders(
  db: Db,
  limit: number,
  leaseMs: number,
  after?: LeaseCursor,
): Promise<LeasedPage> {
  const result = after
    ? await leaseAfter.run(db, [after.visibleAtUs.toString(), after.id.toString(), limit, leaseMs])
    : await leaseFromFront.run(db, [limit, leaseMs]);
  const rows = result.rows;
  if (rows.length === 0) return { ids: [], callbackUrls: new Map() };
  // RETURNING does not keep the page's order: the cursor is the largest key of the page.
  let next: LeaseCursor = { visibleAtUs: BigInt(rows[0].visible_us), id: BigInt(rows[0].id) };
  for (const row of rows) {
    const key = { visibleAtUs: BigInt(row.visible_us), id: BigInt(row.id) };
    if (key.visibleAtUs > next.visibleAtUs || (key.visibleAtUs === next.visibleAtUs && key.id > next.id)) next = key;
  }
  return { ids: rows.map((row) => row.id), callbackUrls: new Map(rows.map((row) => [row.id, row.callback_url])), next };
}
