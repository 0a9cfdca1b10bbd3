import { Worker } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';

import type { Config } from '../config';
import type { Db } from '../db/connection';
import { deliverOrder } from '../delivery/deliver-order';
import { createHttpClient } from '../delivery/http-client';
import { PartnerRateLimit } from '../delivery/partner-rate-limit';
import { SigningKeys } from '../delivery/signing-keys';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import type { PartnerGate } from '../partners/partner-gate';
import { type CallbackJobData, queueRedisOptions } from '../queue/callback-queue';
import { bullConnection, queuePrefix } from '../queue/redis-topology';
import { perShard, shardQueueName } from '../queue/shards';
import type { Watchdog } from '../watchdog';
import { batchedOrderWrites } from './batched-order-writes';

export interface CallbackWorker {
  /**
   * Stops taking jobs at once (the callbacks in flight go on), and starts the grace period: the first
   * step of a shutdown. Idempotent.
   */
  stopFetching(): void;
  /**
   * Stops taking jobs and waits for the callbacks in flight until the grace period (SHUTDOWN_GRACE_MS,
   * counted from stopFetching) ends; then aborts the rest, which hand their orders back at once.
   * Idempotent.
   */
  stop(): Promise<void>;
  /** Aborts the callbacks in flight now (a second signal). Their orders are handed back for redelivery. */
  abortInFlight(): void;
  /** False once stopping, or when BullMQ's worker is not running: for /readyz. */
  isRunning(): boolean;
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
  /** Partner protection (PartnerProtection.gate). */
  partners: PartnerGate;
  /** For the rate limits of PARTNER_RATE_LIMITS: a connection whose commands never wait long. */
  redis: Redis | Cluster;
  /** Watches the statement batches every attempt waits on. */
  watchdog?: Watchdog;
}): CallbackWorker {
  const { config, logger, metrics } = deps;
  const http = createHttpClient({ timeoutMs: config.callbackTimeoutMs, destinations: config.destinations });
  const shutdown = new AbortController();
  const signingKeys = new SigningKeys(deps.db, config.signingKey!, config.partnerSecretsRefreshMs, logger);
  const orders = batchedOrderWrites(deps.db, config, deps.watchdog);
  const rateLimit =
    config.partnerRateLimits.size > 0
      ? new PartnerRateLimit(deps.redis, `order-callbacks:${config.queueName}`, config.partnerRateLimits)
      : undefined;
  const delivery = {
    db: deps.db,
    orders,
    http,
    config,
    logger,
    workerId: deps.workerId,
    signingKeys,
    partners: deps.partners,
    rateLimit,
    observe: metrics?.observeAttempt,
  };

  // One BullMQ worker per shard's queue, WORKER_CONCURRENCY shared among them: orders spread evenly
  // over the shards (id mod QUEUE_SHARDS), so each takes its part.
  const concurrency = perShard(config.workerConcurrency, config.queueShards);
  // On a cluster one client serves every shard's worker (BullMQ makes each its own blocking duplicate).
  const { connection, owned } = bullConnection(config.redis, queueRedisOptions(config.redisSocketTimeoutMs));
  const workers = Array.from({ length: config.queueShards }, (_, shard) => {
    const name = shardQueueName(config.queueName, shard);
    const worker = new Worker<CallbackJobData>(
      name,
      async (job) => {
        const result = await deliverOrder(delivery, job.data.orderId, shutdown.signal, job.data.origin);
        metrics?.deliveryFinished(result);
        return result;
      },
      {
        connection,
        prefix: queuePrefix(config.redis, name),
        name: deps.workerId,
        concurrency,
        // The lock guards only Redis state and may lapse (a blocked event loop); the claim in Postgres
        // is what keeps two workers from delivering one order at once.
        lockDuration: config.jobLockMs,
        stalledInterval: stalledIntervalFor(config.jobLockMs),
        removeOnComplete: { count: 0 },
        removeOnFail: { count: 0 },
      },
    );
    worker.on('error', (err) => logger.error({ err, queue: name }, 'queue worker error'));
    worker.on('failed', (job, err) => {
      logger.error(
        { err, orderId: job?.data.orderId },
        'delivery job failed; the order is offered again when its claim or queue lease runs out',
      );
    });
    return worker;
  });

  let stopping: Promise<void> | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  const stopFetching = () => {
    if (graceTimer) return;
    graceTimer = setTimeout(() => {
      logger.warn({ graceMs: config.shutdownGraceMs }, 'grace period over; aborting callbacks in flight');
      shutdown.abort();
    }, config.shutdownGraceMs);
    // Closing stops fetching at once (a pause alone lets a fetch already waiting take one more job) and
    // waits for the jobs in flight, which go on; stop() waits for it.
    closing = Promise.all(
      workers.map((worker) => worker.close().catch((err) => logger.warn({ err, queue: worker.name }, 'closing the queue worker failed'))),
    ).then(() => owned?.disconnect());
  };
  return {
    abortInFlight: () => shutdown.abort(),
    isRunning: () => !stopping && !graceTimer && workers.every((worker) => worker.isRunning()),
    stopFetching,
    stop: () =>
      (stopping ??= (async () => {
        stopFetching();
        try {
          await closing;
        } finally {
          clearTimeout(graceTimer);
          await http.close();
        }
      })()),
  };
}
