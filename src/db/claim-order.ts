import { lockedBatch, STILL_READY } from './batching/locked-batch';
import type { Db } from './connection';
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
  /**
   * Why the row can never be delivered, when Postgres found it so before handing it over (a URL or a
   * payload too big, a payload that is not an object or is nested too deep): callbackUrl and payload
   * are then null, never loaded into the process. The worker fails the order with this reason.
   */
  poison: string | null;
}

/** A callback URL longer than this (characters) is a bad row. prepareCallback checks the same. */
export const MAX_URL_LENGTH = 2048;
/**
 * A payload nested this deep is a bad row: parsing it, or writing it out as the callback body, walks
 * it recursively, and a deep enough one takes the process's stack.
 */
export const MAX_PAYLOAD_DEPTH = 64;

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
  WITH ${lockedBatch('id bigint')},
  claimed AS (
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
  RETURNING o.id, o.version, o.attempts, o.claim_token AS token, o.ready_since AS "readySince",
            (extract(epoch FROM now()) * 1000)::float8 AS "claimedAtMs", o.callback_url, o.payload
  )
  -- Each claimed row judged once, in Postgres, before its URL and payload leave it: a row that can never
  -- be delivered hands over neither (tens of megabytes, or thousands of levels, would take a worker's
  -- memory or stack when parsed). Judged as the claim found it (RETURNING: the version it claimed, not
  -- the one the statement's snapshot saw). The size is of the payload as JSON text; the exact limit on
  -- the callback body is checked by the worker (prepareCallback), this one is its coarse first line.
  SELECT c.id, c.version, c.attempts, c.token, c."readySince", c."claimedAtMs", judged.poison,
         CASE WHEN judged.poison IS NULL THEN c.callback_url END AS "callbackUrl",
         CASE WHEN judged.poison IS NULL THEN c.payload END AS payload
    FROM claimed c
   CROSS JOIN LATERAL (SELECT octet_length(c.payload::text) AS bytes) size
   CROSS JOIN LATERAL (SELECT CASE
       WHEN length(c.callback_url) > ${MAX_URL_LENGTH} THEN 'callback_url is longer than ${MAX_URL_LENGTH} characters'
       WHEN c.payload IS NULL OR jsonb_typeof(c.payload) <> 'object' THEN 'payload is not a JSON object'
       WHEN size.bytes > ? THEN 'payload is ' || size.bytes || ' bytes as JSON text, far over MAX_PAYLOAD_BYTES'
       WHEN size.bytes >= ${2 * MAX_PAYLOAD_DEPTH} AND jsonb_path_exists(c.payload, 'strict $.**{${MAX_PAYLOAD_DEPTH}}')
         THEN 'payload is nested more than ${MAX_PAYLOAD_DEPTH - 1} levels deep'
     END AS poison) judged
  `;

const claimStatement = new PreparedStatement<ClaimedOrder>('order_callbacks_claim_orders', CLAIM_ORDERS_SQL);

/**
 * Claims orders for one delivery attempt each: status 5, due, and not claimed by a live claim. A claim
 * lasts `ttlMs` (claim_until; the queue lease is made to end with it, or shortly after: see
 * QUEUE_LEASE_KEPT_WITHIN_MS) and carries a fresh token. Read and claim are one statement on the
 * primary, so what a worker acts on is what it holds.
 *
 * A row that can never be delivered is claimed with `poison` saying why, and without its URL and
 * payload (`maxPayloadBytes`: MAX_PAYLOAD_BYTES). Answers one entry per id, in order: the claimed
 * order, or undefined when someone else holds it (a
 * live claim, or a transaction holding the row right now), it is not due, it is no longer at 5, or the
 * id is not an order id. An id listed twice is claimed once, for its first entry. An order skipped
 * for a held row keeps its queue lease and is offered again when that runs out.
 */
export async function claimOrders(
  db: Db,
  orderIds: string[],
  ttlMs: number,
  maxPayloadBytes: number,
): Promise<(ClaimedOrder | undefined)[]> {
  const valid = [...new Set(orderIds.filter(isOrderId))];
  if (valid.length === 0) return orderIds.map(() => undefined);
  const batch = JSON.stringify(valid.map((id) => ({ id })));
  // Twice the body's limit, as JSON text: Postgres writes jsonb with spaces that the body has not.
  const result = await claimStatement.run(db, [batch, ttlMs, ttlMs, ttlMs + QUEUE_LEASE_KEPT_WITHIN_MS, ttlMs, 2 * maxPayloadBytes]);
  const claimed = new Map(result.rows.map((row) => [row.id, row]));
  return orderIds.map((id) => {
    const order = claimed.get(id);
    claimed.delete(id); // a second entry for the same id gets nothing: one claim, one holder
    return order;
  });
}
