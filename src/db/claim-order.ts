import type { Db } from './connection';

export interface ClaimedOrder {
  id: string;
  /** The version read under the claim; the final update must still find it. */
  version: number;
  /** Attempts made before this one. */
  attempts: number;
  callbackUrl: string | null;
  payload: unknown;
  /** The fence token; only the update that carries it can finish the order. */
  token: string;
  /** When the order last became ready: the start of its wait, for the time-to-delivery metric. */
  readySince: Date;
}

/**
 * An order id as Postgres prints a bigint; anything else (a forged job) can match no order. Canonical
 * only ("7", not "007"), so the row Postgres returns is found again by the id that asked for it.
 */
const BIGINT = /^(0|-?[1-9]\d{0,18})$/;
const BIGINT_MAX = 2n ** 63n - 1n;

function isOrderId(id: string): boolean {
  return BIGINT.test(id) && BigInt(id) <= BIGINT_MAX && BigInt(id) >= -BIGINT_MAX - 1n;
}

/**
 * Claims orders for one delivery attempt each: status 5, due, and not claimed by a live claim. A claim
 * lasts `ttlMs` (lease_until) and carries a fresh token. Read and claim are one statement on the
 * primary, so what a worker acts on is what it holds. Rows are locked in id order, so two batches that
 * share orders wait for each other instead of deadlocking. `= ANY(ARRAY(...))` keeps every lookup on
 * the primary key: a join would let the planner scan the whole table.
 *
 * Answers one entry per id, in order: the claimed order, or undefined when someone else holds it, it
 * is not due, it is no longer at 5, or the id is not an order id. An id listed twice is claimed once,
 * for its first entry.
 */
export async function claimOrders(db: Db, orderIds: string[], ttlMs: number): Promise<(ClaimedOrder | undefined)[]> {
  const valid = [...new Set(orderIds.filter(isOrderId))];
  if (valid.length === 0) return orderIds.map(() => undefined);
  const result = await db.raw<{ rows: ClaimedOrder[] }>(
    `
    WITH claimable AS (
      SELECT id
        FROM orders
       WHERE id = ANY(ARRAY(SELECT jsonb_array_elements_text(?::jsonb)::bigint))
         AND status = 5
         AND next_attempt_at <= now()
         AND (claim_token IS NULL OR lease_until IS NULL OR lease_until <= now())
       ORDER BY id
         FOR UPDATE
    )
    UPDATE orders o
       SET claim_token = gen_random_uuid(),
           lease_until = now() + (? * interval '1 millisecond')
     WHERE o.id = ANY(ARRAY(SELECT id FROM claimable))
    RETURNING o.id, o.version, o.attempts, o.callback_url AS "callbackUrl", o.payload, o.claim_token AS token,
              o.ready_since AS "readySince"
    `,
    [JSON.stringify(valid), ttlMs],
  );
  const claimed = new Map(result.rows.map((row) => [row.id, row]));
  return orderIds.map((id) => {
    const order = claimed.get(id);
    claimed.delete(id); // a second entry for the same id gets nothing: one claim, one holder
    return order;
  });
}

/** claimOrders for one order. */
export async function claimOrder(db: Db, orderId: string, ttlMs: number): Promise<ClaimedOrder | undefined> {
  return (await claimOrders(db, [orderId], ttlMs))[0];
}
