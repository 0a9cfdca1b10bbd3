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
 * When the current claim runs out. A claim made before migration 006 kept its expiry in lease_until;
 * this reads both, so such a claim still counts until then.
 */
export const CLAIM_EXPIRY = 'COALESCE(o.claim_until, o.lease_until)';

/**
 * The claim statement, with knex's `?` placeholders: the batch of ids (jsonb, `lockedBatch`) and the
 * claim's lifetime in milliseconds, twice. Exported for the test that checks how Postgres plans it.
 */
export const CLAIM_ORDERS_SQL = `
  WITH ${lockedBatch('id bigint')}
  UPDATE orders o
     SET claim_token = gen_random_uuid(),
         claim_until = now() + (? * interval '1 millisecond'),
         -- No producer may offer a claimed order again, so the queue lease must last as long as the
         -- claim. It nearly always does already (QUEUE_LEASE_MS > CLAIM_TTL_MS), and then stays as it
         -- is: with every indexed column unchanged, Postgres can update the row in place (migration 006).
         lease_until = GREATEST(o.lease_until, now() + (? * interval '1 millisecond'))
   WHERE o.id = ANY(ARRAY(SELECT id FROM locked))
     AND ${STILL_READY}
     AND o.next_attempt_at <= now()
     AND (o.claim_token IS NULL OR ${CLAIM_EXPIRY} IS NULL OR ${CLAIM_EXPIRY} <= now())
  RETURNING o.id, o.version, o.attempts, o.callback_url AS "callbackUrl", o.payload, o.claim_token AS token,
            o.ready_since AS "readySince"
  `;

const claimStatement = new PreparedStatement<ClaimedOrder>('order_callbacks_claim_orders', CLAIM_ORDERS_SQL);

/**
 * Claims orders for one delivery attempt each: status 5, due, and not claimed by a live claim. A claim
 * lasts `ttlMs` (claim_until; the queue lease is stretched to cover it if need be) and carries a fresh
 * token. Read and claim are one statement on the
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
  const result = await claimStatement.run(db, [JSON.stringify(valid.map((id) => ({ id }))), ttlMs, ttlMs]);
  const claimed = new Map(result.rows.map((row) => [row.id, row]));
  return orderIds.map((id) => {
    const order = claimed.get(id);
    claimed.delete(id); // a second entry for the same id gets nothing: one claim, one holder
    return order;
  });
}
