import type { Queue } from 'bullmq';
import type { Config } from '../config';
import type { Db } from '../db/connection';
import { deferUnclaimedOrders, type DeferTo, type UnclaimedDeferral } from '../db/defer-orders';
import { forgetQueueLeases } from '../db/forget-queue-leases';
import { leaseReadyOrders, type LeaseCursor } from '../db/lease-ready-orders';
import type { Logger } from '../observability/logger';
import { countUnfinishedJobs, JOB_OPTIONS, jobIdFor, type CallbackJobData } from '../queue/callback-queue';
import { redisWasReset } from '../queue/redis-reset-detector';

export interface EnqueueDeps {
  db: Db;
  queue: Queue<CallbackJobData>;
  config: Pick<Config, 'maxQueuedJobs' | 'producerPageSize' | 'queueLeaseMs'>;
  logger: Logger;
  /** Told how long each page's lease statement took, in seconds (metrics). */
  observePage?: (seconds: number) => void;
  /**
   * Until when this process's workers hold the partner at `origin` (circuit open, at its cap and not
   * answering, rate limit used up): its orders are deferred here instead of queued, so they take
   * neither the queue's room nor the workers' time from other partners only to be handed back.
   * Absent in a producer without workers beside it.
   */
  heldUntil?: (origin: string) => DeferTo | undefined;
}

export interface EnqueueResult {
  enqueued: number;
  /** Orders deferred instead of queued, their partner held (EnqueueDeps.heldUntil). */
  held: number;
  /**
   * No room left for this run, and orders may still be waiting: look again soon, not at the next poll.
   * Held orders use room too, though they get no job: a run reads at most as many orders as the queue
   * had room for, however many belong to held partners, and the next continues where it stopped.
   */
  queueFull: boolean;
  /**
   * Where a run that continues this one may start: after the last order leased, when the run stopped
   * because the queue was full. Undefined when it reached the end of the visible orders.
   */
  resumeAt?: LeaseCursor;
}

/**
 * One producer run: top the queue up to MAX_QUEUED_JOBS with the orders at 5 that are due and held
 * by nobody. Each order is leased in Postgres (hidden from other producers for QUEUE_LEASE_MS) before
 * its job is added, so a producer that dies between the two loses nothing: the lease runs out and the
 * order is offered again. Orders of a partner the workers beside it hold are deferred instead
 * (EnqueueDeps.heldUntil), without a job. The caller makes sure only one producer runs this at a time,
 * so two of them cannot both see the same free room and overfill the queue.
 *
 * `from`: start after this point of orders_ready_idx instead of at its front (see ScanStart).
 */
export async function enqueueReadyOrders(deps: EnqueueDeps, from?: LeaseCursor): Promise<EnqueueResult> {
  const { db, queue, config, logger } = deps;
  let cursor = from;
  // Asked together, one round trip: a Redis that lost its data has no unfinished jobs to count either.
  const [reset, unfinished] = await Promise.all([redisWasReset(queue), countUnfinishedJobs(queue)]);
  if (reset) {
    const released = await forgetQueueLeases(db);
    if (released > 0) logger.warn({ released }, 'Redis lost its jobs; their orders are offered again now');
    cursor = undefined; // their leases are gone, so they sit at the front again
  }

  let room = config.maxQueuedJobs - unfinished;
  let enqueued = 0;
  let held = 0;
  let reachedEnd = false;
  while (room > 0) {
    const limit = Math.min(room, config.producerPageSize);
    const started = process.hrtime.bigint();
    const page = await leaseReadyOrders(db, limit, config.queueLeaseMs, cursor);
    deps.observePage?.(Number(process.hrtime.bigint() - started) / 1e9);
    reachedEnd = page.ids.length < limit;
    if (page.ids.length > 0) {
      const { queued, deferrals } = setAsideHeld(
        page.ids.map((orderId) => ({ orderId, origin: originOf(page.callbackUrls.get(orderId)) })),
        deps.heldUntil,
      );
      if (queued.length > 0) await addJobs(deps, queued);
      // After the jobs: should this fail, the held orders' leases run out, and only theirs.
      if (deferrals.length > 0) held += await deferUnclaimedOrders(db, deferrals);
      enqueued += queued.length;
      room -= page.ids.length;
      cursor = page.next;
    }
    if (reachedEnd) break;
  }
  if (enqueued > 0 || held > 0) logger.debug({ enqueued, held }, 'enqueued ready orders');
  // A run that found the queue full from the start read nothing and keeps the point it was given.
  return { enqueued, held, queueFull: room <= 0, resumeAt: reachedEnd ? undefined : cursor };
}

/** Splits a page into the orders to queue and those whose partner is held, each with when it comes due. */
function setAsideHeld(
  orders: CallbackJobData[],
  heldUntil: EnqueueDeps['heldUntil'],
): { queued: CallbackJobData[]; deferrals: UnclaimedDeferral[] } {
  if (!heldUntil) return { queued: orders, deferrals: [] };
  const queued: CallbackJobData[] = [];
  const deferrals: UnclaimedDeferral[] = [];
  for (const order of orders) {
    const to = order.origin === undefined ? undefined : heldUntil(order.origin);
    if (to) deferrals.push({ orderId: order.orderId, ...to });
    else queued.push(order);
  }
  return { queued, deferrals };
}

function originOf(url: string | null | undefined): string | undefined {
  try {
    return url ? new URL(url).origin : undefined;
  } catch {
    return undefined; // a bad row: the worker fails it with the reason
  }
}

/** Adds one job per order. When Redis refuses, the leases are dropped so the orders are not held up. */
async function addJobs(deps: EnqueueDeps, orders: CallbackJobData[]): Promise<void> {
  try {
    await deps.queue.addBulk(orders.map((data) => ({ name: 'callback', data, opts: { ...JOB_OPTIONS, jobId: jobIdFor(data.orderId) } })));
  } catch (err) {
    const orderIds = orders.map(({ orderId }) => orderId);
    await forgetQueueLeases(deps.db, orderIds).catch((releaseErr) =>
      deps.logger.warn({ err: releaseErr }, 'could not drop queue leases; they will run out by themselves'),
    );
    throw err;
  }
}
