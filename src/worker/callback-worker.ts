import { Worker } from 'bullmq';
import type { Config } from '../config';
import type { Db } from '../db/connection';
import type { DeferTo } from '../db/defer-orders';
import { deliverOrder } from '../delivery/deliver-order';
import { partnerHold } from '../delivery/partner-admission';
import { createHttpClient } from '../delivery/http-client';
import { HostGate } from '../delivery/host-gate';
import { SlotWaiters } from '../delivery/slot-waiters';
import { SigningKeys } from '../delivery/signing-keys';
import { PartnerRateLimit } from '../delivery/partner-rate-limit';
import { Redis } from 'ioredis';
import { batchedOrderWrites } from './batched-order-writes';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import { redisConnection, type CallbackJobData } from '../queue/callback-queue';

export interface CallbackWorker {
  /**
   * Stops taking jobs and waits for the callbacks in flight, up to SHUTDOWN_GRACE_MS; then aborts the
   * rest, which hand their orders back at once. Idempotent.
   */
  stop(): Promise<void>;
  /** Aborts the callbacks in flight now (a second signal). Their orders are handed back for redelivery. */
  abortInFlight(): void;
  /** False once stopping, or when BullMQ's worker is not running: for /readyz. */
  isRunning(): boolean;
  /**
   * Until when orders to `origin` should stay out of the queue (and, in an open circuit, which one keeps
   * its place as the probe: DeferTo): this worker's attempts would hand them back unclaimed (partnerHold),
   * and not merely because this process is at the cap of a partner that answers (another replica may
   * have room). For a producer in the same process.
   */
  heldUntil(origin: string): DeferTo | undefined;
}

/** How often a worker looks for jobs whose lock ran out. Cheap; it decides how fast a dead worker's jobs return. */
function stalledIntervalFor(lockMs: number): number {
  return Math.max(500, Math.min(30_000, lockMs));
}

export function startCallbackWorker(deps: {
  db: Db;
  config: Config;
  logger: Logger;
  workerId: string;
  metrics?: Metrics;
}): CallbackWorker {
  const { config, logger, metrics } = deps;
  const http = createHttpClient({ timeoutMs: config.callbackTimeoutMs, destinations: config.destinations });
  const shutdown = new AbortController();
  const signingKeys = new SigningKeys(deps.db, config.signingKey!, config.partnerSecretsRefreshMs, logger);
  const gate = new HostGate(config.partnerIsolation);
  // Every worker slot may wait, briefly, for a partner that answers well: bounding the line at the
  // partner's cap sent the rest of a fast partner's orders back through Postgres, and cost a single-partner
  // drain a third of its throughput (BENCHMARKS.md, history).
  const slots = new SlotWaiters(config.workerConcurrency);
  const orders = batchedOrderWrites(deps.db, config.claimTtlMs);
  // Its own connection, and only when some partner has a rate limit: BullMQ's connections block.
  const rateRedis = config.partnerRateLimits.size > 0 ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1 }) : undefined;
  rateRedis?.on('error', (err) => logger.warn({ err }, 'rate limit Redis connection error'));
  const rateLimit = rateRedis && new PartnerRateLimit(rateRedis, `order-callbacks:${config.queueName}`, config.partnerRateLimits);
  const delivery = { db: deps.db, orders, http, config, logger, workerId: deps.workerId, signingKeys, gate, slots, rateLimit, observe: metrics?.observeAttempt };

  const worker = new Worker<CallbackJobData>(
    config.queueName,
    async (job) => {
      const result = await deliverOrder(delivery, job.data.orderId, shutdown.signal, job.data.origin);
      metrics?.deliveryFinished(result);
      return result;
    },
    {
      connection: redisConnection(config.redisUrl),
      name: deps.workerId,
      concurrency: config.workerConcurrency,
      // The lock guards only Redis state and may lapse (a blocked event loop); the claim in Postgres
      // is what keeps two workers from delivering one order at once.
      lockDuration: config.jobLockMs,
      stalledInterval: stalledIntervalFor(config.jobLockMs),
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
    },
  );
  worker.on('error', (err) => logger.error({ err }, 'queue worker error'));
  worker.on('failed', (job, err) => {
    logger.error(
      { err, orderId: job?.data.orderId },
      'delivery job failed; the order is offered again when its claim runs out',
    );
  });

  let stopping: Promise<void> | undefined;
  return {
    abortInFlight: () => shutdown.abort(),
    heldUntil: (origin) => {
      const held = partnerHold(delivery, origin, logger);
      return held && !held.answering ? { until: held.until, probeAt: held.probeAt } : undefined;
    },
    isRunning: () => !stopping && worker.isRunning(),
    stop: () =>
      (stopping ??= (async () => {
        const graceTimer = setTimeout(() => {
          logger.warn({ graceMs: config.shutdownGraceMs }, 'grace period over; aborting callbacks in flight');
          shutdown.abort();
        }, config.shutdownGraceMs);
        try {
          await worker.close();
        } finally {
          clearTimeout(graceTimer);
          await http.close();
          rateRedis?.disconnect();
        }
      })()),
  };
}
