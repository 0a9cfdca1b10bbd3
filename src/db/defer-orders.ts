import { BUSY_ROWS, lockedBatch, type OrBusy, ROW_BUSY, STILL_READY } from './batching/locked-batch';
import { type ClaimedOrder, isOrderId } from './claim-order';
import type { Db } from './connection';

/**
 * When a handed-back order comes due again: this long after Postgres' now(), the one clock every replica
 * shares (an instant from a replica's own clock would be off by its skew).
 */
export interface DeferTo {
  delayMs: number;
}

export interface ClaimedDeferral extends DeferTo {
  order: ClaimedOrder;
}

/**
 * Hands claimed orders back without an attempt: each is not due before now() + its delay. Fenced like
 * every finish (status, version, token). Answers, per deferral and in order, false when the claim was no
 * longer ours (or the same claim came earlier in the batch), ROW_BUSY when another transaction held
 * the order and nothing was done: hand it back again shortly.
 */
export async function deferClaimedOrders(db: Db, deferrals: ClaimedDeferral[]): Promise<OrBusy<boolean>[]> {
  if (deferrals.length === 0) return [];
  const rows = deferrals.map(({ order, delayMs }, ord) => ({
    ord,
    id: order.id,
    version: order.version,
    token: order.token,
    delay_ms: Math.max(0, Math.round(delayMs)),
  }));
  const result = await db.raw<{ rows: { ord: number; deferred: boolean }[] }>(
    `
    WITH ${lockedBatch('ord int, id bigint, version int, token uuid, delay_ms bigint')},
    ${BUSY_ROWS},
    deferred AS (
      UPDATE orders o SET next_attempt_at = now() + i.delay_ms * interval '1 millisecond',
                          claim_token = NULL, claim_until = NULL, lease_until = NULL
        FROM (SELECT DISTINCT ON (id, token) * FROM input ORDER BY id, token, ord) i
       WHERE o.id = ANY(ARRAY(SELECT id FROM locked)) AND o.id = i.id
         AND ${STILL_READY} AND o.version = i.version AND o.claim_token = i.token
      RETURNING i.ord
    )
    SELECT ord, true AS deferred FROM deferred
    UNION ALL
    SELECT ord, false FROM busy
    `,
    [JSON.stringify(rows)],
  );
  const answered = new Map(result.rows.map((row) => [row.ord, row.deferred]));
  return deferrals.map((_, ord) => {
    const deferred = answered.get(ord);
    return deferred === undefined ? false : deferred ? true : ROW_BUSY;
  });
}

export interface UnclaimedDeferral extends DeferTo {
  orderId: string;
}

/**
 * Defers orders that nobody has claimed, each to now() + its delay (never earlier than it was due),
 * dropping their queue leases: their jobs are being dropped, and the orders must come back when their
 * partner may be called again, not when the lease ends. Best effort: ids that are not order ids (a forged
 * job) defer nothing, and an order another transaction holds keeps its queue lease and comes back when
 * that runs out. Answers how many orders it deferred.
 */
export async function deferUnclaimedOrders(db: Db, deferrals: UnclaimedDeferral[]): Promise<number> {
  const rows = deferrals
    .filter(({ orderId }) => isOrderId(orderId))
    .map(({ orderId, delayMs }) => ({ id: orderId, delay_ms: Math.max(0, Math.round(delayMs)) }));
  if (rows.length === 0) return 0;
  const result = await db.raw(
    `
    WITH ${lockedBatch('id bigint, delay_ms bigint')}
    UPDATE orders o SET next_attempt_at = GREATEST(o.next_attempt_at, now() + i.delay_ms * interval '1 millisecond'), lease_until = NULL
      FROM (SELECT DISTINCT ON (id) * FROM input ORDER BY id, delay_ms DESC) i
     WHERE o.id = ANY(ARRAY(SELECT id FROM locked)) AND o.id = i.id
       AND ${STILL_READY} AND o.claim_token IS NULL
    `,
    [JSON.stringify(rows)],
  );
  return result.rowCount ?? 0;
}
