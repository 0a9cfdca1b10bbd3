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
 * Claims an order for one delivery attempt: status 5, due, and not claimed by a live claim. The claim
 * lasts `ttlMs` (lease_until) and carries a fresh token. Read and claim are one statement on the
 * primary, so what the worker acts on is what it holds. Undefined means someone else holds it, it is
 * not due, or it is no longer at 5: there is nothing to do.
 */
export async function claimOrder(db: Db, orderId: string, ttlMs: number): Promise<ClaimedOrder | undefined> {
  const result = await db.raw<{ rows: ClaimedOrder[] }>(
    `
    UPDATE orders
       SET claim_token = gen_random_uuid(),
           lease_until = now() + (? * interval '1 millisecond')
     WHERE id = ?
       AND status = 5
       AND next_attempt_at <= now()
       AND (claim_token IS NULL OR lease_until IS NULL OR lease_until <= now())
    RETURNING id, version, attempts, callback_url AS "callbackUrl", payload, claim_token AS token, ready_since AS "readySince"
    `,
    [ttlMs, orderId],
  );
  return result.rows[0];
}
