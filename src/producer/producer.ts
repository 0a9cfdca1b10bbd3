import { randomUUID } from 'node:crypto';

import type { Queue } from 'bullmq';

import { startBackgroundLoop } from '../background-loop';
import type { Config } from '../config';
import type { Db, SessionBounds } from '../db/connection';
import type { Shard } from '../db/lease-ready-orders';
import { askProducerLease, type ProducerFence, releaseProducerLease } from '../db/producer-lease';
import { announceReleased, routeReadyNotifications, shardNamed } from '../db/ready-notifications';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import type { CallbackJobData } from '../queue/callback-queue';
import { RedisLossDetector } from '../queue/redis-reset-detector';
import { type CallbackQueues, perShard } from '../queue/shards';
import { withTimeout } from '../with-timeout';
import { enqueueReadyOrders } from './enqueue-ready-orders';
import { ReadyListener } from './ready-listener';
import { ScanStart } from './scan-start';

export interface Producer {
  stop(): Promise<void>;
}

/** How long stop() waits for a run in progress before closing the session under it. */
const RUN_FINISH_TIMEOUT_MS = 4000;

/**
 * How soon to ask again when another producer won a race for the lease, or its lease is about to run
 * out. Otherwise a replica that does not hold a shard asks again when the holder's lease would run out
 * (the answer says when), not every few hundred milliseconds: asking costs a statement per replica and
 * shard.
 */
const LOCK_RETRY_MS = 200;

/**
 * How soon to look again when a run found no room left (the queue full, or the run's room spent, held
 * partners' orders included). Workers empty a full queue fast (2,000 jobs in about 300 ms at 7,000
 * orders/s), and a run takes tens of milliseconds to refill it: looking 200 ms later left one replica's
 * workers without a job for a fifth of a drain, and cost it 8–13 % of its orders per second
 * (docs/decisions/0002-queue-buffer-and-refill.md). A look at a queue that is still full is one Redis round trip.
 */
const QUEUE_FULL_RECHECK_MS = 20;

/**
 * How long a producer keeps the lock across back-to-back runs. While orders keep coming, runs follow
 * each other a few milliseconds apart (about 100 a second at 500 orders/s), and taking and releasing
 * the lock around each was two of a run's round trips. Letting it go this often, and whenever a run
 * finds nothing or fails, hands other replicas their turn and asks Postgres again whether the session
 * still holds it.
 */
const LOCK_HOLD_MS = 1000;

/**
 * The producer: wakes on Postgres NOTIFY (an order became ready) and on every POLL_INTERVAL_MS as the
 * safety net for lost notifications and for retries coming due. The orders are split into
 * QUEUE_SHARDS shards (id mod QUEUE_SHARDS), each fed to its own queue by a loop of its own. Any number
 * of replicas may run; per shard, a lease with an expiry (producer_leases, PRODUCER_LEASE_MS) lets one
 * run at a time, so the replicas share the shards instead of multiplying the work (and two cannot both
 * see the same free room in a queue and overfill it). The lease statement checks it at write time: a
 * holder that froze, or wedged, loses it when it runs out, and leases nothing if it wakes; another
 * replica takes the shard over meanwhile.
 */
export async function startProducer(deps: {
  db: Db;
  queues: CallbackQueues;
  config: Config;
  logger: Logger;
  metrics?: Metrics;
  /** EnqueueDeps.partnerLimits. */
  partnerLimits?: () => Promise<ReadonlyMap<string, number>>;
  /** EnqueueDeps.probesLeased. */
  probesLeased?: (origins: ReadonlySet<string>) => void;
  /** Who holds the producer leases, for people (host:pid). */
  holder: string;
  /** What its LISTEN session runs under: the daemon's session bounds. */
  sessionBounds?: SessionBounds;
}): Promise<Producer> {
  const logger = deps.logger.child({ component: 'producer' });
  const count = deps.queues.shards.length;
  // One LISTEN session for every shard's loop. The trigger names the order's shard (notifyReadyBody), so
  // only that shard's loop wakes; a notification naming none, or another number of shards (replicas
  // disagree while the number changes), or missed ones, wake them all.
  const named = await routeReadyNotifications(deps.db, count).catch((err: unknown) => {
    logger.warn({ err }, 'could not make notifications name their shard; each wakes every shard loop');
    return false;
  });
  if (!named && count > 1) logger.info('this role may not replace orders_notify_ready(): each notification wakes every shard loop');
  const shards: ShardProducer[] = [];
  const listener = new ReadyListener(
    deps.config.databaseUrl,
    (payload) => {
      const shard = shardNamed(payload);
      if (shard?.count === count && shards[shard.index]) shards[shard.index].ordersBecameReady(shard.released);
      else for (const each of shards) each.ordersBecameReady(shard?.released ?? false);
    },
    logger,
    deps.sessionBounds,
  );
  await listener.start();
  const config = { ...deps.config, maxQueuedJobs: perShard(deps.config.maxQueuedJobs, count) };
  for (const [index, queue] of deps.queues.shards.entries()) {
    shards.push(
      startShardProducer({ ...deps, config, queue, shard: { index, count }, logger: count > 1 ? logger.child({ shard: index }) : logger }),
    );
  }

  let stopping: Promise<void> | undefined;
  return {
    stop: () =>
      (stopping ??= (async () => {
        try {
          await Promise.all(shards.map((shard) => shard.stop()));
        } finally {
          await listener.close();
        }
      })()),
  };
}

interface ShardProducer {
  /** `released`: a replica stopping let the shard's lease go, so whoever heard it may take it at once. */
  ordersBecameReady(released: boolean): void;
  stop(): Promise<void>;
}

/** One shard's producer loop: its lease, its queue, its scan position and its Redis loss detector. */
function startShardProducer(deps: {
  db: Db;
  queue: Queue<CallbackJobData>;
  shard: Shard;
  config: Config;
  logger: Logger;
  metrics?: Metrics;
  partnerLimits?: () => Promise<ReadonlyMap<string, number>>;
  probesLeased?: (origins: ReadonlySet<string>) => void;
  holder: string;
}): ShardProducer {
  const { logger } = deps;
  // The queue's own name: with one shard, the lease every version of the producer has taken.
  const leaseName = `producer:${deps.queue.name}`;
  /** The lease while this producer holds it: since when, and when to renew it (performance.now()). */
  let held: { fence: ProducerFence; since: number; renewAt: number } | undefined;
  /**
   * Until when (performance.now()) another replica's lease on the shard runs, by the last answer: until
   * then that replica produces the shard, so a notification need not wake this loop. 0 once unknown.
   */
  let heldElsewhereUntil = 0;
  const leaseMs = deps.config.producerLeaseMs;
  const scanStart = new ScanStart(deps.config.pollIntervalMs);
  const redisLoss = new RedisLossDetector(deps.queue, deps.db);

  const loop = startBackgroundLoop({
    name: 'producer',
    intervalMs: deps.config.pollIntervalMs,
    logger,
    runOnce,
  });

  /** One run: take or renew the lease, enqueue what is ready, keep or let go of the lease. */
  async function runOnce(): Promise<number | undefined> {
    const fence = held?.fence ?? { name: leaseName, token: randomUUID() };
    if (!held || performance.now() >= held.renewAt) {
      const heldForMs = await renew(fence);
      if (heldForMs !== undefined) return Math.max(heldForMs, LOCK_RETRY_MS);
    }
    const { since } = held!;
    let keepLock = false;
    const started = process.hrtime.bigint();
    try {
      const result = await enqueueReadyOrders(
        { ...deps, logger, fence, redisLoss, observePage: deps.metrics?.producerPageRead, beforePage: () => stillHeld(fence) },
        scanStart.nextRun(),
      );
      scanStart.stoppedAt(result.resumeAt);
      deps.metrics?.producerRan(Number(process.hrtime.bigint() - started) / 1e9, result.enqueued);
      const holdLeftMs = since + LOCK_HOLD_MS - performance.now();
      keepLock = held !== undefined && (result.enqueued > 0 || result.queueFull) && holdLeftMs > 0;
      if (result.queueFull) return QUEUE_FULL_RECHECK_MS;
      // Lost to another replica during the run: ask again when its lease would run out, as a run that
      // found it held at the start does (notifications are not heard meanwhile).
      if (held === undefined) return Math.max(heldElsewhereUntil - performance.now(), LOCK_RETRY_MS);
      // Kept, the lease must not wait for the next NOTIFY or poll, which may be far off: by then a run
      // finds nothing new and lets it go.
      return keepLock ? holdLeftMs : undefined;
    } finally {
      if (!keepLock) await letGo(fence);
    }
  }

  /**
   * Takes or renews the lease. Undefined when held; otherwise how long another replica holds it for
   * (0 when that is unknown).
   */
  async function renew(fence: ProducerFence): Promise<number | undefined> {
    const asked = performance.now();
    const answer = await askProducerLease(deps.db, fence, deps.holder, leaseMs);
    if (!answer.held) {
      held = undefined;
      heldElsewhereUntil = asked + answer.heldForMs;
      return answer.heldForMs;
    }
    heldElsewhereUntil = 0;
    // Renewed well before its end, counted from when it was asked for (the lease counts from later).
    held = { fence, since: held?.since ?? asked, renewAt: asked + leaseMs / 3 };
    return undefined;
  }

  /** Between the pages of a long run: renews the lease when due; false (and a warning) once it is lost. */
  async function stillHeld(fence: ProducerFence): Promise<boolean> {
    if (held && performance.now() < held.renewAt) return true;
    if ((await renew(fence)) === undefined) return true;
    logger.warn('lost the producer lease during a run (it ran out, and another replica took it); stopping the run');
    return false;
  }

  async function letGo(fence: ProducerFence): Promise<void> {
    try {
      await releaseProducerLease(deps.db, fence);
    } catch (err) {
      // Kept, and renewed before it is used: a lease whose release failed stands until it runs out, and
      // only its own token can take it back before then. A new token would leave the queue unfed that long.
      held = { fence, since: held?.since ?? performance.now(), renewAt: 0 };
      throw err;
    }
    held = undefined;
  }

  let stopping: Promise<void> | undefined;
  return {
    ordersBecameReady: (released) => {
      scanStart.ordersBecameReady();
      if (released) heldElsewhereUntil = 0;
      // The holder elsewhere was woken by the same notification. Should it have died, its lease runs
      // out by heldElsewhereUntil, and this loop's next run, due then, takes the shard over.
      if (performance.now() >= heldElsewhereUntil) loop.wake();
    },
    stop: () =>
      (stopping ??= (async () => {
        try {
          // A run stuck on a Redis that is gone must not keep the Postgres session (and its reconnects) alive.
          await withTimeout(loop.stop(), RUN_FINISH_TIMEOUT_MS, 'the producer run in progress did not finish');
          // A lease kept between runs goes now, and the other replicas hear of it (they stopped listening
          // for this shard when they saw it held): one takes over at once, not when it would have run out.
          if (held) {
            await letGo(held.fence);
            await announceReleased(deps.db, deps.shard);
          }
        } catch (err) {
          logger.warn({ err }, 'stopping the producer without waiting for its run');
        }
      })()),
  };
}
