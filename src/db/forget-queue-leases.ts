import type { Db } from './connection';

/**
 * Makes every enqueued-but-unclaimed order at 5 visible again. Called when Redis is found to have lost
 * its data: the jobs those leases stood for are gone, so waiting for the leases to run out would only
 * delay the orders. Claimed orders keep their claim: a worker may still be delivering them.
 */
export async function forgetQueueLeases(db: Db): Promise<number> {
  const result = await db.raw(
    `UPDATE orders SET lease_until = NULL
      WHERE status = 5 AND claim_token IS NULL AND lease_until > now()`,
  );
  return result.rowCount ?? 0;
}
