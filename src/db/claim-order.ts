import type { Db } from './connection';
import { lockedBatch, STILL_READY } from './locked-batch';
import { PreparedStatement } from './prepared-statement';

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
  /**
   * Postgres' now() when the claim was made (ms since the epoch): the one clock every replica shares,
   * carried forward by the worker on a monotonic clock for what it stamps (webhook-timestamp).
   */
  claimedAtMs: number;
}

/**
 * An order id as Postgres prints a bigint; anything else (a forged job) can match no order. Canonical
 * only ("7", not "007"), so the row Postgres returns is found again by the id that asked for it.
 */
const BIGINT = /^(0|-?[1-9]\d{0,18})$/;
const BIGINT_MAX = 2n ** 63n - 1n;

export function isOrderId(id: string): boolean {
  return BIGINT.test(id) && BigInt(id) <= BIGINT_MAX && BigInt(id) >= -BIGINT_MAX - 1n;
}

/**
 * The queue lease of a claimed order must not end before its claim (a producer would offer the order
 * again while a worker delivers it), nor long after it (an order whose worker died comes back when its
 * queue lease ends, if its job is gone too). A lease that ends up to this long after the claim is
 * left as it is: with every indexed column unchanged, Postgres updates the row in place (migration 006).
 * The default QUEUE_LEASE_MS (the claim's lifetime + 5 s, up to a minute) falls in this window for a
 * claim made within 5 s of its order being queued; any other lease is set to end with the claim, as
 * every claim did before.
 */
export const QUEUE_LEASE_KEPT_WITHIN_MS = 10_000;

/**
 * When the current claim runs out. A claim made before migration 006 kept its expiry in lease_until;
 * this reads both, so such a claim still counts until then.
 */
export const CLAIM_EXPIRY = 'COALESCE(o.claim_until, o.lease_until)';

/**
 * The claim statement, with knex's `?` placeholders: the batch of ids (jsonb, `lockedBatch`) and the
 * claim's lifetime in milliseconds (then the window of QUEUE_LEASE_KEPT_WITHIN_MS, then the lifetime
 * again: see claimOrders). Exported for the test that checks how Postgres plans it.
 */
export const CLAIM_ORDERS_SQL = `
  WITH ${lockedBatch('id bigint')}
  UPDATE orders o
     SET claim_token = gen_random_uuid(),
         claim_until = now() + (? * interval '1 millisecond'),
         -- See QUEUE_LEASE_KEPT_WITHIN_MS: a queue lease that ends with the claim or a little after it
         -- stays as it is; any other is set to end with the claim.
         lease_until = CASE WHEN o.lease_until BETWEEN now() + (? * interval '1 millisecond')
                                               AND now() + (? * interval '1 millisecond')
                            THEN o.lease_until
                            ELSE now() + (? * interval '1 millisecond') END
   WHERE o.id = ANY(ARRAY(SELECT id FROM locked))
     AND ${STILL_READY}
     AND o.next_attempt_at <= now()
     AND (o.claim_token IS NULL OR ${CLAIM_EXPIRY} IS NULL OR ${CLAIM_EXPIRY} <= now())
  RETURNING o.id, o.version, o.attempts, o.callback_url AS "callbackUrl", o.payload, o.claim_token AS token,
            o.ready_since AS "readySince", (extract(epoch FROM now()) * 1000)::float8 AS "claimedAtMs"
  `;

const claimStatement = new PreparedStatement<ClaimedOrder>('order_callbacks_claim_orders', CLAIM_ORDERS_SQL);

/**
 * Claims orders for one delivery attempt each: status 5, due, and not claimed by a live claim. A claim
 * lasts `ttlMs` (claim_until; the queue lease is made to end with it, or shortly after: see
 * QUEUE_LEASE_KEPT_WITHIN_MS) and carries a fresh token. Read and claim are one statement on the
 * primary, so what a worker acts on is what it holds.
 *
 * Answers one entry per id, in order: the claimed order, or undefined when someone else holds it (a
 * live claim, or a transaction holding the row right now), it is not due, it is no longer at 5, or the
 * id is not an order id. An id listed twice is claimed once, for its first entry. An order skipped
 * for a held row keeps its queue lease and is offered again when that runs out.
 */
export async function claimOrders(db: Db, orderIds: string[], ttlMs: number): Promise<(ClaimedOrder | undefined)[]> {
  const valid = [...new Set(orderIds.filter(isOrderId))];
  if (valid.length === 0) return orderIds.map(() => undefined);
  const batch = JSON.stringify(valid.map((id) => ({ id })));
  const result = await claimStatement.run(db, [batch, ttlMs, ttlMs, ttlMs + QUEUE_LEASE_KEPT_WITHIN_MS, ttlMs]);
  const claimed = new Map(result.rows.map((row) => [row.id, row]));
  return orderIds.map((id) => {
    const order = claimed.get(id);
    claimed.delete(id); // a second entry for the same id gets nothing: one claim, one holder
    return order;
  });
}
