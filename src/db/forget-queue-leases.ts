import { withTimeout } from '../with-timeout';
import type { Db } from './connection';
import { type Shard, SHARD_OF_ID } from './lease-ready-orders';

/**
 * Makes enqueued-but-unclaimed orders at 5 visible again at once, instead of when their queue lease
 * runs out. For when their jobs are known not to be in Redis: Redis lost its data (all of them), or
 * adding them failed (`orderIds`); `shard`: only that shard's orders (its queue's Redis lost them).
 * Claimed orders keep their claim: a worker may still be delivering.
 */
export async function forgetQueueLeases(db: Db, orderIds?: string[], shard?: Shard): Promise<number> {
  // Bounded: one that waits on a lock gives up, and the caller tries again on its next run. withTimeout
  // as well: knex cancels a timed-out statement over a new connection of its own, and waits for that.
  const statement = db
    .raw(
      `UPDATE orders SET lease_until = NULL
        WHERE status = 5 AND claim_token IS NULL AND lease_until > now()
          ${orderIds ? 'AND id = ANY(?::bigint[])' : ''}
          ${shard ? `AND ${SHARD_OF_ID} = ?::bigint` : ''}`,
      [...(orderIds ? [orderIds] : []), ...(shard ? [shard.count, shard.index] : [])],
    )
    .timeout(FORGET_TIMEOUT_MS, { cancel: true });
  const result = await withTimeout(Promise.resolve(statement), 2 * FORGET_TIMEOUT_MS, 'forgetting queue leases did not end');
  return result.rowCount ?? 0;
}

const FORGET_TIMEOUT_MS = 10_000;
