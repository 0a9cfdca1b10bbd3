import { askWhileBusy } from '../db/batching/ask-while-busy';
import { retryOnDeadlock } from '../db/batching/retry-on-deadlock';
import { StatementBatcher } from '../db/batching/statement-batcher';
import { type ClaimedOrder, claimOrders } from '../db/claim-order';
import type { Db } from '../db/connection';
import { type ClaimedDeferral, deferClaimedOrders, type DeferTo, deferUnclaimedOrders, type UnclaimedDeferral } from '../db/defer-orders';
import { type AttemptRecord, recordAttempts } from '../db/record-attempt';
import type { OrderWrites } from '../delivery/deliver-order';
import type { Watchdog } from '../watchdog';

/**
 * The attempts' writes, each kind gathered across the worker's concurrent attempts into shared
 * statements: one round trip and one commit for many orders instead of one each, which is what bounds
 * a pipeline that commits per order. Each attempt still gets its own answer. A batch that Postgres
 * rolls back as a deadlock victim runs again, rather than failing every attempt in it; a finish whose
 * row another transaction held is asked again on its own, while the rest of its batch goes through.
 */
export function batchedOrderWrites(
  db: Db,
  { claimTtlMs, maxPayloadBytes, batchLingerMs }: { claimTtlMs: number; maxPayloadBytes: number; batchLingerMs: number },
  watchdog?: Watchdog,
): OrderWrites {
  const watched = (name: string) => ({ watchdog, name, lingerMs: batchLingerMs });
  const claims = new StatementBatcher(
    (ids: string[]) => retryOnDeadlock(() => claimOrders(db, ids, claimTtlMs, maxPayloadBytes)),
    watched('claim'),
  );
  const records = new StatementBatcher((batch: AttemptRecord[]) => retryOnDeadlock(() => recordAttempts(db, batch)), watched('record'));
  const claimedDeferrals = new StatementBatcher(
    (batch: ClaimedDeferral[]) => retryOnDeadlock(() => deferClaimedOrders(db, batch)),
    watched('hand-back of a claimed order'),
  );
  const unclaimedDeferrals = new StatementBatcher(async (batch: UnclaimedDeferral[]) => {
    await retryOnDeadlock(() => deferUnclaimedOrders(db, batch));
    return batch.map(() => undefined);
  }, watched('hand-back'));
  return {
    claim: (orderId: string) => claims.submit(orderId),
    record: (record: AttemptRecord) => askWhileBusy(() => records.submit(record)),
    deferClaimed: (order: ClaimedOrder, to: DeferTo) => askWhileBusy(() => claimedDeferrals.submit({ order, delayMs: to.delayMs })),
    deferUnclaimed: (orderId: string, to: DeferTo) => unclaimedDeferrals.submit({ orderId, delayMs: to.delayMs }),
  };
}
