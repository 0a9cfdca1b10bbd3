import type { Cluster, Redis } from 'ioredis';

import type { Config } from '../config';
import type { Logger } from '../observability/logger';
import { REDIS_KEEPALIVE_DELAY_MS } from '../queue/callback-queue';
import { connectRedis } from '../queue/redis-topology';
import { LeaseLimits } from './lease-limits';
import { LocalPartnerStore } from './local-partner-store';
import { LocalPartnerDirectory, type PartnerDirectory, RedisPartnerDirectory } from './partner-directory';
import { PartnerGate } from './partner-gate';
import { storeTimings } from './partner-store';
import { RedisPartnerStore } from './redis-partner-store';

export interface PartnerProtection {
  /** For workers: admission, slots, transitions. Absent in a producer-only process. */
  gate?: PartnerGate;
  /** For the producer: what it may lease of each partner that is not closed. */
  leaseLimits: LeaseLimits;
  /** The shared directory, for metrics and the status page. */
  directory: PartnerDirectory;
  /** The connection partner state and rate limits share (commands bounded, never queued for long). */
  redis: Redis | Cluster;
  close(): void;
}

/**
 * A bound on every partner-state command: Redis that does not answer within it counts as unavailable,
 * and the gate falls back to per-process state instead of holding callbacks up.
 */
const COMMAND_TIMEOUT_MS = 1000;

/** Partner protection for one process: docs/partners.md. */
export function startPartnerProtection(options: {
  config: Config;
  logger: Logger;
  workerId: string;
  withGate: boolean;
}): PartnerProtection {
  const { config, logger } = options;
  // autoResendUnfulfilledCommands off: a script that ran before the connection dropped would run again
  // after it came back, and count its outcomes and probes twice.
  // socketTimeout: a connection gone silent fails every command at its timeout; ended, it is opened again.
  const redis = connectRedis(config.redis, {
    maxRetriesPerRequest: 1,
    commandTimeout: COMMAND_TIMEOUT_MS,
    autoResendUnfulfilledCommands: false,
    socketTimeout: config.redisSocketTimeoutMs,
    keepAlive: REDIS_KEEPALIVE_DELAY_MS,
  });
  let lastWarned = -Infinity;
  redis.on('error', (err) => {
    // ioredis reports every failed reconnect; once a minute is enough to say Redis is away.
    if (performance.now() - lastWarned < 60_000) return;
    lastWarned = performance.now();
    logger.warn({ err }, 'partner state Redis connection error');
  });
  const rules = config.partnerRules;
  const timings = storeTimings(rules.windowMs);
  const shared = {
    store: new RedisPartnerStore(redis, config.queueName, timings, rules.cooldownMs),
    directory: new RedisPartnerDirectory(redis, config.queueName),
  };
  const local = { store: new LocalPartnerStore(timings, rules.cooldownMs), directory: new LocalPartnerDirectory() };
  const gate = options.withGate
    ? new PartnerGate({
        shared,
        local,
        rules,
        callbackTimeoutMs: config.callbackTimeoutMs,
        workerId: options.workerId,
        logger: logger.child({ component: 'partners' }),
      })
    : undefined;
  const leaseLimits = new LeaseLimits({
    shared,
    local: local.directory,
    rules,
    logger: logger.child({ component: 'partners' }),
    capacitySkips: gate && (() => gate.capacitySkips()),
  });
  return {
    gate,
    leaseLimits,
    directory: shared.directory,
    redis,
    close: () => {
      gate?.stop();
      redis.disconnect();
    },
  };
}
