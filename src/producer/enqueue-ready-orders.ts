import type { Queue } from 'bullmq';

import type { Config } from '../config';
import type { Db } from '../db/connection';
import { forgetQueueLeases } from '../db/forget-queue-leases';
import { type LeaseCursor, leaseReadyOrders, type Shard } from '../db/lease-ready-orders';
import type { ProducerFence } from '../db/producer-lease';
import type { Logger } from '../observability/logger';
import { type CallbackJobData, countUnfinishedJobs, JOB_OPTIONS, jobIdFor } from '../queue/callback-queue';
import type { RedisLossDetector } from '../queue/redis-reset-detector';

export interface EnqueueDeps {
  db: Db;
  queue: Queue<CallbackJobData>;
  config: Pick<Config, 'maxQueuedJobs' | 'producerPageSize' | 'queueLeaseMs'>;
  logger: Logger;
  /** The orders this producer offers, to `queue`: one shard (id mod QUEUE_SHARDS). */
  shard: Shard;
  /** The shard's producer lease this run holds: the lease statement leases nothing once it is not current. */
  fence: ProducerFence;
  /** Asked before each page after the first: false when the run must stop (its lease was lost). */
  beforePage?: () => Promise<boolean>;
  /** Tells whether Redis lost the queue's data since the last look. */
  redisLoss: Pick<RedisLossDetector, 'lost' | 'dealtWith' | 'jobsAdded'>;
  /** Told how long each page's lease statement took, in seconds (metrics). */
  observePage?: (seconds: number) => void;
  /**
   * What this run may lease of each partner that is not closed (LeaseLimits): none of a held partner's
   * orders, only the probes of a half-open one. Its backlog stays where it is, untouched, and takes
   * neither the queue's room nor the workers' time from other partners.
   */
  partnerLimits?: () => Promise<ReadonlyMap<string, number>>;
  /** Told, as soon as a page is leased, the partners of whose limited allowance it took orders. */
  probesLeased?: (origins: ReadonlySet<string>) => void;
}

export interface EnqueueResult {
  enqueued: number;
  /** No room left for this run, and orders may still be waiting: look again soon, not at the next poll. */
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
 * order is offered again. Held partners' orders are not leased at all (EnqueueDeps.partnerLimits).
 * The caller holds the producer lease (EnqueueDeps.fence), so only one producer runs this at a time,
 * so two of them cannot both see the same free room and overfill the queue.
 *
 * `from`: start after this point of orders_ready_idx instead of at its front (see ScanStart).
 */
export async function enqueueReadyOrders(deps: EnqueueDeps, from?: LeaseCursor): Promise<EnqueueResult> {
  const { db, queue, config, logger } = deps;
  let cursor = from;
  // Asked together: a Redis that lost its data has no unfinished jobs to count either.
  const [lost, unfinished] = await Promise.all([deps.redisLoss.lost(), countUnfinishedJobs(queue)]);
  if (lost) {
    const released = await forgetQueueLeases(db, undefined, deps.shard);
    // Only now: should forgetting fail, the next run finds the loss again and tries again.
    await deps.redisLoss.dealtWith();
    // A first look at a new Redis finds no marker either, and nothing to release.
    if (released > 0) logger.warn({ released, why: lost }, 'Redis lost its jobs; their orders are offered again now');
    else logger.debug({ why: lost }, 'no jobs to offer again after a look at a new (or emptied) Redis');
    cursor = undefined; // their leases are gone, so they sit at the front again
  }

  let room = config.maxQueuedJobs - unfinished;
  let enqueued = 0;
  let reachedEnd = false;
  // The run's allowance per partner that is not closed, spent as its pages lease (each page reads from
  // the front, so the next one must not take a half-open partner's probes again).
  const partnerLimits = room > 0 ? new Map(await deps.partnerLimits?.()) : undefined;
  // Read partner by partner, a page starts at the front: the cursor is of the other way of reading.
  const byPartner = partnerLimits !== undefined && partnerLimits.size > 0;
  if (byPartner) cursor = undefined;
  // Each page's jobs go to Redis while the next page is leased in Postgres: the two round trips overlap.
  let adding: PageAdd | undefined;
  let failed = false;
  try {
    for (let pages = 0; room > 0; pages++) {
      if (pages > 0 && deps.beforePage && !(await deps.beforePage())) break;
      const limit = Math.min(room, config.producerPageSize);
      const started = process.hrtime.bigint();
      const page = await leaseReadyOrders(db, limit, config.queueLeaseMs, deps.fence, deps.shard, cursor, partnerLimits);
      deps.observePage?.(Number(process.hrtime.bigint() - started) / 1e9);
      reachedEnd = !page.mayHaveMore;
      const previous = adding;
      adding = undefined;
      await finishAdding(deps, previous, page.ids);
      if (page.ids.length > 0) {
        const jobs = page.ids.map((orderId) => ({ orderId, origin: originOf(page.callbackUrls.get(orderId)) }));
        adding = startAdding(deps, jobs);
        const probed = new Set<string>();
        for (const { origin } of jobs) {
          const left = origin === undefined ? undefined : partnerLimits?.get(origin);
          if (left === undefined) continue;
          partnerLimits!.set(origin!, Math.max(0, left - 1));
          if (left > 0) probed.add(origin!);
        }
        if (probed.size > 0) deps.probesLeased?.(probed);
        enqueued += page.ids.length;
        room -= page.ids.length;
        cursor = page.next;
      }
      if (reachedEnd) break;
    }
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    // Also when leasing failed: the page already leased still reaches Redis (or loses its leases). The
    // run's own error is the one to report; Redis refusing that page as well is logged.
    const last = finishAdding(deps, adding, []);
    if (failed) await last.catch((err: unknown) => logger.warn({ err }, 'Redis also refused the jobs of the page before'));
    else await last;
  }
  if (enqueued > 0) await deps.redisLoss.jobsAdded();
  if (enqueued > 0) logger.debug({ enqueued, heldPartners: byPartner ? partnerLimits.size : 0 }, 'enqueued ready orders');
  // A run that found the queue full from the start read nothing and keeps the point it was given.
  return { enqueued, queueFull: room <= 0, resumeAt: reachedEnd || byPartner ? undefined : cursor };
}

/** A routing hint longer than this is left out: a job's data holds nothing unbounded. */
const MAX_ORIGIN_HINT = 300;

function originOf(url: string | null | undefined): string | undefined {
  try {
    const origin = url ? new URL(url).origin : undefined;
    return origin !== undefined && origin.length <= MAX_ORIGIN_HINT ? origin : undefined;
  } catch {
    return undefined; // a bad row: the worker fails it with the reason
  }
}

/** A page's jobs on their way to Redis: settles with the error when Redis refused them. */
type PageAdd = Promise<unknown>;

/**
 * Adds one job per order, in the background (see finishAdding). When Redis refuses, the leases are
 * dropped so the orders are not held up.
 */
function startAdding(deps: EnqueueDeps, orders: CallbackJobData[]): PageAdd {
  // Built inside the chain: whatever fails, the leases are dropped.
  return Promise.resolve()
    .then(() => {
      const jobs = orders.map((data) => ({ name: 'callback', data, opts: { ...JOB_OPTIONS, jobId: jobIdFor(data.orderId) } }));
      return deps.queue.addBulk(jobs);
    })
    .then(
      () => undefined,
      async (err: unknown) => {
        await forgetLeases(
          deps,
          orders.map(({ orderId }) => orderId),
        );
        return { failed: err };
      },
    );
}

/**
 * Waits for the previous page's jobs. When Redis refused them, the page leased meanwhile (`leasedSince`)
 * will not be added either: its leases are dropped too, and the run fails with Redis' error.
 */
async function finishAdding(deps: EnqueueDeps, adding: PageAdd | undefined, leasedSince: string[]): Promise<void> {
  const outcome = (await adding) as { failed: unknown } | undefined;
  if (outcome === undefined) return;
  if (leasedSince.length > 0) await forgetLeases(deps, leasedSince);
  throw outcome.failed;
}

async function forgetLeases(deps: EnqueueDeps, orderIds: string[]): Promise<void> {
  await forgetQueueLeases(deps.db, orderIds).catch((releaseErr) =>
    deps.logger.warn({ err: releaseErr }, 'could not drop queue leases; they will run out by themselves'),
  );
}
