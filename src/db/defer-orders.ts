import type { Db } from './connection';
import { isOrderId, type ClaimedOrder } from './claim-order';
import { BUSY_ROWS, lockedBatch, ROW_BUSY, STILL_READY, type OrBusy } from './locked-batch';

/** When a deferred order comes due again. */
export interface DeferTo {
  until: Date;
  /**
   * The end of the partner's open circuit (HostGate's circuitEnd), when the deferral is for it: an order
   * already due at exactly this time keeps it. The backlog's deferral left it there to be the probe (or,
   * when the circuit ends with a Retry-After pause, a refusal during the pause did: then a few are due
   * with the probe, and are handed back once while it is out).
   */
  probeAt?: Date;
}

/** next_attempt_at for a deferral row `i` of the batch (columns until, probe_at): see DeferTo. */
const keepProbe = (deferred: string) => `CASE WHEN o.next_attempt_at = i.probe_at THEN o.next_attempt_at ELSE ${deferred} END`;

export interface ClaimedDeferral extends DeferTo {
  order: ClaimedOrder;
}

/**
 * Hands claimed orders back without an attempt: each is not due before its `until`. Fenced like every
 * finish (status, version, token). Answers, per deferral and in order, false when the claim was no
 * longer ours (or the same claim came earlier in the batch), ROW_BUSY when another transaction held
 * the order and nothing was done: hand it back again shortly.
 */
export async function deferClaimedOrders(db: Db, deferrals: ClaimedDeferral[]): Promise<OrBusy<boolean>[]> {
  if (deferrals.length === 0) return [];
  const rows = deferrals.map(({ order, until, probeAt }, ord) => ({ ord, id: order.id, version: order.version, token: order.token, until, probe_at: probeAt ?? null }));
  const result = await db.raw<{ rows: { ord: number; deferred: boolean }[] }>(
    `
    WITH ${lockedBatch('ord int, id bigint, version int, token uuid, until timestamptz, probe_at timestamptz')},
    ${BUSY_ROWS},
    deferred AS (
      UPDATE orders o SET next_attempt_at = ${keepProbe('i.until')}, claim_token = NULL, claim_until = NULL, lease_until = NULL
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
 * Defers orders that nobody has claimed, each to its `until`, dropping their queue leases: the jobs
 * for them are being dropped, and the orders must come back when the partner's circuit closes, not
 * when the lease ends. Best effort: ids that are not order ids (a forged job) defer nothing, and an
 * order another transaction holds keeps its queue lease and comes back when that runs out. Answers
 * how many orders it deferred.
 */
export async function deferUnclaimedOrders(db: Db, deferrals: UnclaimedDeferral[]): Promise<number> {
  const rows = deferrals.filter(({ orderId }) => isOrderId(orderId)).map(({ orderId, until, probeAt }) => ({ id: orderId, until, probe_at: probeAt ?? null }));
  if (rows.length === 0) return 0;
  const result = await db.raw(
    `
    WITH ${lockedBatch('id bigint, until timestamptz, probe_at timestamptz')}
    UPDATE orders o SET next_attempt_at = ${keepProbe('GREATEST(o.next_attempt_at, i.until)')}, lease_until = NULL
      FROM (SELECT DISTINCT ON (id) * FROM input ORDER BY id, until DESC) i
     WHERE o.id = ANY(ARRAY(SELECT id FROM locked)) AND o.id = i.id
       AND ${STILL_READY} AND o.claim_token IS NULL
    `,
    [JSON.stringify(rows)],
  );
  return result.rowCount ?? 0;
}

/**
 * deferOriginOrders' statement, with knex's `?` placeholders: the host, the three spellings of the
 * origin (followed by a path, by a query, alone), then `until` twice, then when the rest come due.
 * Exported for the test that checks how Postgres plans it: through orders_ready_host_idx, not every
 * ready order of every partner.
 * SKIP LOCKED: rows a worker holds right now are being claimed or finished, and are refused by the gate
 * one by one; waiting for them while holding thousands of others is how batches deadlock.
 */
export const DEFER_ORIGIN_SQL = `
  WITH held AS (
    SELECT id FROM orders
     WHERE status = 5 AND callback_host(callback_url) = ?
       AND (starts_with(lower(callback_url), ?) OR starts_with(lower(callback_url), ?) OR lower(callback_url) = ?)
       AND next_attempt_at <= ? AND claim_token IS NULL
       FOR UPDATE SKIP LOCKED
  )
  UPDATE orders SET next_attempt_at = CASE WHEN id = (SELECT min(id) FROM held) THEN ?::timestamptz ELSE ?::timestamptz END,
                    lease_until = NULL
   WHERE id = ANY(ARRAY(SELECT id FROM held))`;

/**
 * Defers every ready, unclaimed order to `origin` (scheme://host[:port]) that would come due by
 * `until`: when a partner's circuit opens, its backlog stops reaching the queue at all instead of one
 * job at a time. orders_ready_host_idx narrows to the host; the prefix picks the origin. URLs spelled
 * differently (an explicit default port) are missed here and deferred one by one when claimed.
 * Their queue leases go too: a job already queued for one of them finds it not due and ends, and the
 * order must come back when `until` passes, not when a lease for that dropped job runs out.
 *
 * `probeWaitMs`: when a probe will go out at `until` (a circuit opened by failures), one order (the
 * lowest id) comes due then, to be that probe, and the rest this much later, once the probe has
 * answered or timed out. Otherwise the whole backlog came due with the probe, and was leased and handed
 * back again while the probe was out; if the probe fails, the circuit opens again and this runs again.
 * Orders due at `until` itself are split too: a Retry-After pause left them there when the circuit
 * opened at the pause's end.
 */
export async function deferOriginOrders(db: Db, origin: URL, until: Date, probeWaitMs = 0): Promise<number> {
  const prefix = origin.origin.toLowerCase();
  const rest = new Date(until.getTime() + probeWaitMs);
  const result = await db.raw(DEFER_ORIGIN_SQL, [origin.hostname.toLowerCase(), `${prefix}/`, `${prefix}?`, prefix, until, until, rest]);
  return result.rowCount ?? 0;
}
