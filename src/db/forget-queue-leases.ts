import type { Db } from './connection';

/**
 * Makes enqueued-but-unclaimed orders at 5 visible again at once, instead of when their queue lease
 * runs out. For when their jobs are known not to be in Redis: Redis lost its data (all of them), or
 * adding them failed (`orderIds`). Claimed orders keep their claim, since a worker may still be
 * delivering; their queue lease, which a claim leaves as long as it was (migration 006), is cut back
 * to the claim's end, so that if that worker is gone too the order returns when the claim runs out.
 */
export async function forgetQueueLeases(db: Db, orderIds?: string[]): Promise<number> {
  const result = await db.raw(
    `UPDATE orders SET lease_until = CASE WHEN claim_token IS NULL THEN NULL ELSE claim_until END
      WHERE status = 5 AND lease_until > now()
        AND (claim_token IS NULL OR claim_until < lease_until)
        ${orderIds ? 'AND id = ANY(?::bigint[])' : ''}`,
    orderIds ? [orderIds] : [],
  );
  return result.rowCount ?? 0;
}
