import os from 'node:os';

import type { DestinationStream } from 'pino';

import { loadConfig } from './config';
import { createDb, sessionBounds } from './db/connection';
import { Lifecycle } from './lifecycle';
import { startDeliveryLogRetention } from './maintenance/delivery-log-retention';
import { createLogger, type Logger } from './observability/logger';
import { Metrics } from './observability/metrics';
import { startOpsServer } from './observability/ops-server';
import { startOrderGaugesRefresh } from './observability/refresh-order-gauges';
import { startPartnerProtection } from './partners/partner-protection';
import { startProducer } from './producer/producer';
import { describeRedis } from './queue/redis-topology';
import { CallbackQueues } from './queue/shards';
import { HAND_BACK_MS, shutdownDeadlineMs } from './shutdown-budget';
import { waitForServices } from './wait-for-services';
import { Watchdog, watchdogBoundMs, watchProgress } from './watchdog';
import { type CallbackWorker, startCallbackWorker } from './worker/callback-worker';

export type DaemonRole = 'start' | 'worker' | 'producer';

export interface Daemon {
  logger: Logger;
  /** The port /metrics and the status page listen on, when METRICS_PORT is set. */
  opsPort?: number;
  /** Graceful stop: producer first, then workers (with their grace period), then connections. */
  stop(): Promise<void>;
  /** Aborts the callbacks in flight now; their orders are handed back. */
  abortInFlight(): void;
  /** The longest a graceful stop may take (shutdownDeadlineMs): past it, the process exits anyway. */
  shutdownDeadlineMs: number;
}

/**
 * Starts what `role` asks for in this process and returns once it runs. Resources are registered
 * with the lifecycle as they are made, so a failure half-way still releases what was made.
 */
export async function startDaemon(
  role: DaemonRole,
  env: NodeJS.ProcessEnv = process.env,
  options: {
    logDestination?: DestinationStream;
    workerId?: string;
    /** Called when the watchdog finds work wedged (past twice its bound); the process should exit non-zero. */
    onWedged?: () => void;
  } = {},
): Promise<Daemon> {
  const config = loadConfig(env, { requireSecret: role !== 'producer' });
  const workerId = options.workerId ?? `${os.hostname()}:${process.pid}`;
  const logger = createLogger(config.logLevel, options.logDestination).child({ worker: workerId });
  const lifecycle = new Lifecycle(logger);
  const startup = new AbortController();
  lifecycle.add('startup', () => startup.abort());
  let worker: CallbackWorker | undefined;
  let opsPort: number | undefined;

  try {
    const bounds = sessionBounds(config.databaseStatementTimeoutMs, logger);
    const db = createDb(config.databaseUrl, config.databasePoolMax, bounds);
    lifecycle.add('postgres pool', () => db.destroy());
    const queues = CallbackQueues.open(config, config.redisSocketTimeoutMs);
    lifecycle.add('queue', () => queues.close());
    queues.on('error', (err) => logger.error({ err }, 'queue connection error'));
    await waitForServices(db, queues, logger, startup.signal);

    for (const deprecation of config.deprecations) logger.warn(deprecation);
    const watchdog = new Watchdog(watchdogBoundMs(config.databaseStatementTimeoutMs));
    const watching = watchProgress(watchdog, logger, options.onWedged);
    lifecycle.add('watchdog', () => clearInterval(watching));
    const partners = startPartnerProtection({ config, logger, workerId, withGate: role !== 'producer' });
    lifecycle.add('partner protection', () => partners.close());
    const metrics = config.metrics
      ? new Metrics({
          db,
          queue: queues,
          partners: partners.directory,
          partnerRules: config.partnerRules,
          partnersTopK: config.partnerMetricsTopK,
        })
      : undefined;
    partners.gate?.observe(metrics?.partnerObserver);
    // Every replica offers to do the periodic maintenance; maintenance_turns lets one at a time do it.
    if (config.deliveryLogRetentionDays > 0) {
      const retention = startDeliveryLogRetention({ db, holder: workerId, days: config.deliveryLogRetentionDays, logger });
      lifecycle.add('delivery log retention', () => retention.stop());
    }
    if (metrics) {
      const gauges = startOrderGaugesRefresh({ db, holder: workerId, logger });
      lifecycle.add('order gauges', () => gauges.stop());
    }
    // Released in reverse: on a signal, fetching stops first, then the producer, then the callbacks in
    // flight get the rest of the grace period and hand back what is left; the ops server answers
    // (/readyz red) until then.
    if (config.metrics && metrics) {
      const ops = await startOpsServer({
        ...config.metrics,
        db,
        partners: { directory: partners.directory, rules: config.partnerRules },
        metrics,
        logger,
        checks: {
          postgres: async () => {
            assertAnswering(bounds.silence.overdueCount());
            await db.raw('SELECT 1');
          },
          redis: () => queues.getJobCounts('waiting'),
          ...(role !== 'producer' ? { worker: async () => assertRunning(worker?.isRunning() ?? false) } : {}),
          progress: async () => assertMoving(watchdog),
        },
        // Degraded, not down: the process goes on delivering with per-process partner limits.
        degraded: (): Record<string, string> => {
          const partnerState = partners.gate?.degraded();
          return partnerState ? { partners: partnerState } : {};
        },
      });
      opsPort = ops.port;
      lifecycle.add('ops server', () => ops.close());
    }
    if (role !== 'producer') {
      const started = startCallbackWorker({
        db,
        config,
        logger,
        workerId,
        metrics,
        partners: partners.gate!,
        redis: partners.redis,
        watchdog,
      });
      worker = started;
      // The rest of the grace period, then the aborted callbacks' hand-backs (Postgres), then BullMQ's close.
      lifecycle.add('worker', () => started.stop(), config.shutdownGraceMs + HAND_BACK_MS);
    }
    if (role !== 'worker') {
      const producer = await startProducer({
        db,
        queues,
        config,
        logger,
        metrics,
        partnerLimits: () => partners.leaseLimits.get(),
        probesLeased: (origins) => partners.leaseLimits.probesLeased(origins),
        holder: workerId,
        sessionBounds: bounds,
      });
      lifecycle.add('producer', () => producer.stop());
    }
    const fetching = worker;
    if (fetching) lifecycle.add('fetching', () => fetching.stopFetching());
  } catch (err) {
    await lifecycle.stop();
    throw err;
  }

  logger.info(
    {
      role,
      queue: config.queueName,
      shards: config.queueShards,
      redis: describeRedis(config.redis),
      concurrency: config.workerConcurrency,
      maxQueuedJobs: config.maxQueuedJobs,
    },
    'order-callbacks running',
  );
  return {
    logger,
    opsPort,
    shutdownDeadlineMs: shutdownDeadlineMs(config.shutdownGraceMs),
    stop: () => lifecycle.stop(),
    abortInFlight: () => worker?.abortInFlight(),
  };
}

function assertRunning(running: boolean): void {
  if (!running) throw new Error('worker is not running');
}

function assertAnswering(overdue: number): void {
  if (overdue > 0) throw new Error(`Postgres connections not answering for longer than the statement timeout: ${overdue}`);
}

function assertMoving(watchdog: Watchdog): void {
  const { progress, what, runningMs } = watchdog.check();
  if (progress !== 'moving') throw new Error(`${what} has run for ${Math.round(runningMs)} ms`);
}

/**
 * The process around a daemon: the first SIGTERM/SIGINT stops gracefully and exits 0; a second one
 * aborts the callbacks still in flight. Tells PM2 (wait_ready) it is ready once the services answer.
 */
export async function runDaemon(role: DaemonRole): Promise<void> {
  let signals = 0;
  let daemon: Daemon | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (!daemon) process.exit(0); // still waiting for the services: nothing in flight to finish
    if (signals === 1) {
      daemon.logger.info({ signal }, 'stopping: no new work; waiting for callbacks in flight');
      // Every step of the stop has its own bound; this one is the whole stop's, should they add up wrong.
      const { shutdownDeadlineMs: deadline, logger } = daemon;
      setTimeout(() => {
        logger.error({ deadlineMs: deadline }, 'stopping took longer than its deadline; exiting now');
        logger.flush();
        process.exit(1);
      }, deadline).unref();
      void daemon.stop().then(() => {
        daemon!.logger.info('stopped');
        daemon!.logger.flush();
        process.exit(0);
      });
    } else {
      daemon.logger.warn({ signal }, 'second signal: aborting callbacks in flight');
      daemon.abortInFlight();
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  daemon = await startDaemon(role, process.env, {
    onWedged: () => {
      daemon?.logger.flush();
      process.exit(1);
    },
  });
  process.send?.('ready');
}
