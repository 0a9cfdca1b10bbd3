import type { Db } from './connection';
import type { ClaimedOrder } from './claim-order';

/**
 * Hands a claimed order back without an attempt: it is not due before `until`. Fenced like every
 * finish (status, version, token). False when the claim was no longer ours.
 */
export async function deferClaimedOrder(db: Db, order: ClaimedOrder, until: Date): Promise<boolean> {
  const result = await db.raw(
    `UPDATE orders SET next_attempt_at = ?, claim_token = NULL, lease_until = NULL
      WHERE id = ? AND status = 5 AND version = ? AND claim_token = ?::uuid`,
    [until, order.id, order.version, order.token],
  );
  return (result.rowCount ?? 0) === 1;
}

/**
 * Defers one order that nobody has claimed to `until`, dropping its queue lease: the job for it is
 * being dropped, and the order must come back when the partner's circuit closes, not when the lease ends.
 */
export async function deferUnclaimedOrder(db: Db, orderId: string, until: Date): Promise<void> {
  await db.raw(
    `UPDATE orders SET next_attempt_at = GREATEST(next_attempt_at, ?), lease_until = NULL
      WHERE id = ? AND status = 5 AND claim_token IS NULL`,
    [until, orderId],
  );
}

/**
 * Defers every ready, unclaimed order to `origin` (scheme://host[:port]) that would come due before
 * `until`: when a partner's circuit opens, its backlog stops reaching the queue at all instead of one
 * job at a time. orders_ready_host_idx narrows to the host; the prefix picks the origin. URLs spelled
 * differently (an explicit default port) are missed here and deferred one by one when claimed.
 */
export async function deferOriginOrders(db: Db, origin: URL, until: Date): Promise<number> {
  const prefix = origin.origin.toLowerCase();
  const result = await db.raw(
    `UPDATE orders SET next_attempt_at = ?
      WHERE status = 5 AND callback_host(callback_url) = ?
        AND (starts_with(lower(callback_url), ?) OR starts_with(lower(callback_url), ?) OR lower(callback_url) = ?)
        AND next_attempt_at < ? AND claim_token IS NULL`,
    [until, origin.hostname.toLowerCase(), `${prefix}/`, `${prefix}?`, prefix, until],
  );
  return result.rowCount ?? 0;
}
