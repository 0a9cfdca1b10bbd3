import { isIP } from 'node:net';

import { z } from 'zod';

import { DEFAULT_FINAL_STATUSES, parseStatusList } from './delivery/classify';
import { type DestinationPolicy, parseCidrList } from './delivery/destination-policy';
import { parseRateLimits } from './delivery/partner-rate-limit';
import { DEFAULT_RETRY_SCHEDULE_MS, maxAttemptsOf, parseRetrySchedule, type RetryPolicy } from './delivery/retry-schedule';
import { keyOfSecret } from './delivery/sign';
import { ConfigError } from './errors/config-error';
import type { CircuitRules } from './partners/partner-circuit';
import { authOf, parseHostPorts, type RedisTopology } from './queue/redis-topology';

/** HOST_MAX_IN_FLIGHT when unset (or WORKER_CONCURRENCY, if lower). */
const DEFAULT_HOST_MAX_IN_FLIGHT = 64;
/** BREAKER_MIN_ATTEMPTS when neither it nor BREAKER_FAILURE_THRESHOLD is set. */
const DEFAULT_BREAKER_MIN_ATTEMPTS = 20;

/**
 * The only reader of process.env. Every variable is validated once, at start; a bad value stops the
 * process with a message that names the variable.
 */

const boolean = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']))
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

/** Letters, digits, hyphens and dots, as in `localhost` or `metrics.internal`. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

/** `whsec_` followed by base64 that decodes to at least 16 bytes (Standard Webhooks secret format). */
export const webhookSecret = z
  .string()
  .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, { message: 'must be whsec_ followed by base64' })
  .refine((value) => Buffer.from(value.slice('whsec_'.length), 'base64').length >= 16, {
    message: 'must decode to at least 16 bytes of key',
  });

const schema = z.object({
  DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/order_callbacks'),
  REDIS_URL: url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  // A cluster or a Sentinel set-up instead of one server; REDIS_URL then gives only credentials and TLS.
  REDIS_CLUSTER_NODES: z.string().optional(),
  REDIS_SENTINELS: z.string().optional(),
  REDIS_SENTINEL_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,100}$/, { message: 'must be 1-100 letters, digits, _ . or -' })
    .optional(),
  REDIS_SENTINEL_PASSWORD: z.string().optional(),
  QUEUE_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,100}$/, { message: 'must be 1-100 letters, digits, _ . or -' })
    .default('order-callbacks'),
  // Queues the orders are spread over (by id mod QUEUE_SHARDS), each with its own producer lease.
  QUEUE_SHARDS: integer(1, 64).default(1),
  CALLBACK_SECRET: webhookSecret.optional(),
  WORKER_CONCURRENCY: integer(1, 1000).default(200),
  POLL_INTERVAL_MS: integer(10, 3_600_000).default(1000),
  CALLBACK_TIMEOUT_MS: integer(100, 600_000).default(10_000),
  // None of these three set: RETRY_SCHEDULE, or DEFAULT_RETRY_SCHEDULE_MS. Any of them set: exponential
  // backoff, the others at EXPONENTIAL_DEFAULTS (see retryPolicyOf).
  MAX_ATTEMPTS: integer(1, 1000).optional(),
  RETRY_BASE_MS: integer(1, 86_400_000).optional(),
  RETRY_MAX_MS: integer(1, 7 * 86_400_000).optional(),
  RETRY_SCHEDULE: z.string().optional(),
  PARTNER_MAX_PAUSE_MS: integer(1000, 7 * 86_400_000).optional(),
  FINAL_STATUSES: z.string().optional(),
  CALLBACK_ALLOW_PRIVATE: boolean.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // The queue is a buffer between runs of the producer (one every ~20 ms when it is full): it must hold
  // more than the workers take meanwhile. 1000 starved one replica at ~3,500 orders/s
  // (docs/decisions/0002-queue-buffer-and-refill.md).
  MAX_QUEUED_JOBS: integer(1, 1_000_000).default(2000),
  PRODUCER_PAGE_SIZE: integer(1, 10_000).default(1000),
  PRODUCER_LEASE_MS: integer(1000, 300_000).default(5000),
  QUEUE_LEASE_MS: integer(100, 86_400_000).optional(),
  CLAIM_TTL_MS: integer(1000, 3_600_000).optional(),
  SHUTDOWN_GRACE_MS: integer(0, 3_600_000).optional(),
  JOB_LOCK_MS: integer(500, 3_600_000).optional(),
  DATABASE_POOL_MAX: integer(2, 1000).default(10),
  WORKER_BATCH_LINGER_MS: integer(0, 1000).default(0),
  DATABASE_STATEMENT_TIMEOUT_MS: integer(1000, 3_600_000).default(30_000),
  // Well above BullMQ's longest blocking fetch (10 s), or an idle worker's wait would pass for silence.
  REDIS_SOCKET_TIMEOUT_MS: integer(15_000, 3_600_000).default(30_000),
  // A real port: Prometheus must know where to scrape, so 0 (any free port) is refused.
  METRICS_PORT: integer(1, 65535).optional(),
  CALLBACK_ALLOWED_CIDRS: z.string().optional(),
  CALLBACK_ALLOWED_PORTS: z
    .string()
    .regex(/^\s*(\*|\d{1,5}(\s*,\s*\d{1,5})*)\s*$/, { message: 'must be * or a comma-separated list of ports' })
    .optional(),
  MAX_PAYLOAD_BYTES: integer(1024, 16 * 1024 * 1024).default(256 * 1024),
  // 0: delivery_log is kept for ever.
  DELIVERY_LOG_RETENTION_DAYS: integer(0, 36_500).default(30),
  PARTNER_SECRETS_REFRESH_MS: integer(50, 3_600_000).default(10_000),
  HOST_MAX_IN_FLIGHT: integer(1, 1000).optional(),
  BREAKER_FAILURE_RATE: z.coerce.number().min(0.5).max(1).default(0.9),
  BREAKER_MIN_ATTEMPTS: integer(1, 1_000_000).optional(),
  // Before the rate-based breaker, "failures in a row"; now read as BREAKER_MIN_ATTEMPTS, so that a
  // setting that turned the breaker off (a huge value) still does.
  BREAKER_FAILURE_THRESHOLD: integer(1, 1_000_000).optional(),
  BREAKER_WINDOW_MS: integer(1000, 3_600_000).default(30_000),
  BREAKER_HALF_OPEN_PROBES: integer(1, 100).default(3),
  BREAKER_COOLDOWN_MS: integer(100, 86_400_000).default(30_000),
  BREAKER_MAX_COOLDOWN_MS: integer(100, 86_400_000).default(600_000),
  PARTNER_RATE_LIMITS: z.string().optional(),
  PARTNER_METRICS_TOP_K: integer(0, 1000).default(10),
  // An address to bind, not a URL: the status page has no login, so it listens on loopback by default.
  METRICS_HOST: z
    .string()
    .trim()
    .refine((value) => isIP(value) !== 0 || HOST_NAME.test(value), { message: 'must be an IP address or a host name' })
    .default('127.0.0.1'),
});

/** Every variable the daemon reads: the compose file, .env.example and docs/configuration.md list each (tests check). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.shape);

/** The schema itself, for the test that checks docs/configuration.md's defaults and ranges against it. */
export const CONFIG_SCHEMA = schema;

export interface Config {
  databaseUrl: string;
  /** REDIS_URL as given: in a cluster or Sentinel set-up, only its credentials and TLS are used (see redis). */
  redisUrl: string;
  /** Where Redis is: one server, a cluster, or a primary found through Sentinel. */
  redis: RedisTopology;
  queueName: string;
  /** Queues (and producer leases) the orders are spread over: shard = id mod queueShards. */
  queueShards: number;
  /** Signing key: the base64-decoded part of CALLBACK_SECRET. Absent for commands that never sign. */
  signingKey?: Buffer;
  workerConcurrency: number;
  pollIntervalMs: number;
  callbackTimeoutMs: number;
  /** When each retry comes: a schedule, or exponential backoff. */
  retry: RetryPolicy;
  /** Attempts an order gets in all (from `retry`). */
  maxAttempts: number;
  /** Answers that end an order at once (7): they can never succeed for that order. */
  finalStatuses: ReadonlySet<number>;
  /** Where callbacks may go: private ranges, allowed CIDRs, allowed ports. */
  destinations: DestinationPolicy;
  /** A callback body larger than this makes the order a bad row (7). */
  maxPayloadBytes: number;
  /** delivery_log rows older than this many days are deleted, by one replica at a time; 0: never. */
  deliveryLogRetentionDays: number;
  /** How long a worker's claim or record may wait for others to share its statement (0: not at all). */
  batchLingerMs: number;
  /** How often workers re-read partner_secrets: a rotation takes effect within this time. */
  partnerSecretsRefreshMs: number;
  /**
   * Per-partner (origin) protection, shared by every replica through Redis: the in-flight cap and the
   * circuit's rules (docs/partners.md).
   */
  partnerRules: CircuitRules;
  /** How many partners that are not closed /metrics names (the longest held): bounds its series. */
  partnerMetricsTopK: number;
  /** Configuration that still works but has a newer name: logged once at start. */
  deprecations: string[];
  /** Callbacks per second, per host, across all replicas (PARTNER_RATE_LIMITS); hosts not listed have none. */
  partnerRateLimits: ReadonlyMap<string, number>;
  logLevel: string;
  /** Redis holds at most this many unfinished jobs, however many orders are at 5. */
  maxQueuedJobs: number;
  producerPageSize: number;
  /**
   * How long a producer's turn lasts unless renewed (it renews every third of it while it works): a
   * producer that freezes or wedges stops enqueueing for everyone for at most this long.
   */
  producerLeaseMs: number;
  /** How long an enqueued order stays invisible to producers before it is offered again. */
  queueLeaseMs: number;
  /**
   * How long a worker's claim on an order lasts, and BullMQ's job lock. Must outlive the callback
   * timeout, or two workers could deliver the same order at once.
   */
  claimTtlMs: number;
  /** How long SIGTERM waits for in-flight callbacks before aborting them. */
  shutdownGraceMs: number;
  /**
   * BullMQ's job lock. Defaults to the claim TTL. It may be set shorter: the lock only guards Redis
   * state and can always expire early (a blocked event loop), so the claim in Postgres is the fence.
   */
  jobLockMs: number;
  /**
   * Postgres connections per process. A delivery holds one only for its claim and its record, never
   * during the HTTP call, so a few serve many callbacks; replicas x this must stay under max_connections.
   */
  databasePoolMax: number;
  /**
   * The longest a daemon's statement runs (Postgres' statement_timeout, and its
   * idle_in_transaction_session_timeout); a connection that was sent a statement and says nothing for
   * silenceBoundMs of it (1.5 ×, at least 5 s more) is taken for silent and ended.
   */
  databaseStatementTimeoutMs: number;
  /**
   * A Redis connection that was sent a command and says nothing for this long is taken for silent:
   * ended and opened again. BullMQ's connections send their unanswered commands again on the new one;
   * partner state's fail them (its scripts must not run twice).
   */
  redisSocketTimeoutMs: number;
  /** Where /metrics, /healthz, /readyz and the status page listen; undefined = not served. */
  metrics?: { host: string; port: number };
}

export interface LoadOptions {
  /** start and worker sign callbacks, so they need CALLBACK_SECRET. */
  requireSecret?: boolean;
}

/** Margin between the callback timeout and the claim's expiry: covers the database round trips. */
const CLAIM_MARGIN_MS = 5000;

/**
 * The queue lease outlasts the claim by this much by default, so that a claim made within a few seconds
 * of its order being queued keeps the lease as it is and Postgres can update the row in place (see
 * QUEUE_LEASE_KEPT_WITHIN_MS in claim-order.ts); a much longer lease would be cut back by every claim.
 * At most a minute, though: the lease is also how long the orders of a producer that died before
 * queuing them stay hidden, and long callback timeouts make long claims.
 */
const QUEUE_LEASE_MARGIN_MS = 5000;
const QUEUE_LEASE_DEFAULT_MAX_MS = 60_000;

export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Readonly<Config> {
  const parsed = schema.safeParse(withoutEmptyValues(env));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
  }
  const v = parsed.data;
  const problems: string[] = [];
  if (options.requireSecret && !v.CALLBACK_SECRET) {
    problems.push('CALLBACK_SECRET: required to sign callbacks (format whsec_<base64>)');
  }
  const retry = retryPolicyOf(v, problems);
  let finalStatuses: ReadonlySet<number> = DEFAULT_FINAL_STATUSES;
  try {
    if (v.FINAL_STATUSES !== undefined) finalStatuses = parseStatusList(v.FINAL_STATUSES);
  } catch (err) {
    problems.push(`FINAL_STATUSES: ${(err as Error).message}`);
  }
  const claimTtlMs = v.CLAIM_TTL_MS ?? v.CALLBACK_TIMEOUT_MS * 2 + CLAIM_MARGIN_MS;
  if (claimTtlMs < v.CALLBACK_TIMEOUT_MS + 1000) {
    problems.push('CLAIM_TTL_MS: must exceed CALLBACK_TIMEOUT_MS by at least 1000 ms');
  } else if (claimTtlMs < v.CALLBACK_TIMEOUT_MS + 1000 + 2 * v.WORKER_BATCH_LINGER_MS) {
    // The claim and the record may each linger: the claim's margin must still hold after both.
    problems.push('WORKER_BATCH_LINGER_MS: CLAIM_TTL_MS must exceed CALLBACK_TIMEOUT_MS by at least 1000 ms + 2 × WORKER_BATCH_LINGER_MS');
  }
  let allowedRanges: DestinationPolicy['allowedRanges'] = [];
  try {
    allowedRanges = parseCidrList(v.CALLBACK_ALLOWED_CIDRS ?? '');
  } catch (err) {
    problems.push(`CALLBACK_ALLOWED_CIDRS: ${(err as Error).message}`);
  }
  let partnerRateLimits = new Map<string, number>();
  try {
    partnerRateLimits = parseRateLimits(v.PARTNER_RATE_LIMITS ?? '');
  } catch (err) {
    problems.push(`PARTNER_RATE_LIMITS: ${(err as Error).message}`);
  }
  const ports = parsePorts(v.CALLBACK_ALLOWED_PORTS, v.CALLBACK_ALLOW_PRIVATE);
  if (typeof ports === 'string') problems.push(`CALLBACK_ALLOWED_PORTS: ${ports}`);
  const redis = redisTopologyOf(v, problems);
  if (problems.length > 0) throw new ConfigError(problems.join('; '));

  return Object.freeze({
    databaseUrl: v.DATABASE_URL,
    redisUrl: v.REDIS_URL,
    redis,
    queueName: v.QUEUE_NAME,
    queueShards: v.QUEUE_SHARDS,
    signingKey: v.CALLBACK_SECRET ? keyOfSecret(v.CALLBACK_SECRET) : undefined,
    workerConcurrency: v.WORKER_CONCURRENCY,
    pollIntervalMs: v.POLL_INTERVAL_MS,
    callbackTimeoutMs: v.CALLBACK_TIMEOUT_MS,
    retry,
    maxAttempts: maxAttemptsOf(retry),
    finalStatuses,
    destinations: Object.freeze({
      allowPrivate: v.CALLBACK_ALLOW_PRIVATE,
      allowedRanges,
      allowedPorts: ports as ReadonlySet<number> | undefined,
    }),
    maxPayloadBytes: v.MAX_PAYLOAD_BYTES,
    deliveryLogRetentionDays: v.DELIVERY_LOG_RETENTION_DAYS,
    batchLingerMs: v.WORKER_BATCH_LINGER_MS,
    partnerSecretsRefreshMs: v.PARTNER_SECRETS_REFRESH_MS,
    partnerRules: Object.freeze({
      // By default one partner may hold at most a third of one replica's workers (64 of 200), across
      // all replicas: the rest stay free for everyone else while it is slow.
      maxInFlight: v.HOST_MAX_IN_FLIGHT ?? Math.min(DEFAULT_HOST_MAX_IN_FLIGHT, v.WORKER_CONCURRENCY),
      failureRate: v.BREAKER_FAILURE_RATE,
      minAttempts: v.BREAKER_MIN_ATTEMPTS ?? v.BREAKER_FAILURE_THRESHOLD ?? DEFAULT_BREAKER_MIN_ATTEMPTS,
      windowMs: v.BREAKER_WINDOW_MS,
      probes: v.BREAKER_HALF_OPEN_PROBES,
      cooldownMs: v.BREAKER_COOLDOWN_MS,
      maxCooldownMs: Math.max(v.BREAKER_MAX_COOLDOWN_MS, v.BREAKER_COOLDOWN_MS),
      // RETRY_MAX_MS capped the pause before PARTNER_MAX_PAUSE_MS existed, and still does where it is set.
      maxPauseMs: v.PARTNER_MAX_PAUSE_MS ?? v.RETRY_MAX_MS ?? EXPONENTIAL_DEFAULTS.maxMs,
    }),
    partnerMetricsTopK: v.PARTNER_METRICS_TOP_K,
    deprecations:
      v.BREAKER_FAILURE_THRESHOLD === undefined
        ? []
        : [
            'BREAKER_FAILURE_THRESHOLD is read as BREAKER_MIN_ATTEMPTS' +
              (v.BREAKER_MIN_ATTEMPTS === undefined ? '' : ', which is set and wins') +
              ': the breaker trips on a failure rate now (docs/partners.md)',
          ],
    partnerRateLimits,
    logLevel: v.LOG_LEVEL,
    maxQueuedJobs: v.MAX_QUEUED_JOBS,
    producerPageSize: v.PRODUCER_PAGE_SIZE,
    producerLeaseMs: v.PRODUCER_LEASE_MS,
    queueLeaseMs: v.QUEUE_LEASE_MS ?? Math.min(claimTtlMs + QUEUE_LEASE_MARGIN_MS, QUEUE_LEASE_DEFAULT_MAX_MS),
    claimTtlMs,
    shutdownGraceMs: v.SHUTDOWN_GRACE_MS ?? v.CALLBACK_TIMEOUT_MS + CLAIM_MARGIN_MS,
    jobLockMs: v.JOB_LOCK_MS ?? claimTtlMs,
    databasePoolMax: v.DATABASE_POOL_MAX,
    databaseStatementTimeoutMs: v.DATABASE_STATEMENT_TIMEOUT_MS,
    redisSocketTimeoutMs: v.REDIS_SOCKET_TIMEOUT_MS,
    metrics: v.METRICS_PORT === undefined ? undefined : { host: v.METRICS_HOST, port: v.METRICS_PORT },
  });
}

/** One server, a cluster or Sentinel, from the REDIS_* variables; problems named by variable. */
function redisTopologyOf(v: z.infer<typeof schema>, problems: string[]): RedisTopology {
  const single: RedisTopology = { kind: 'single', url: v.REDIS_URL };
  const auth = authOf(v.REDIS_URL);
  if (v.REDIS_CLUSTER_NODES !== undefined && v.REDIS_SENTINELS !== undefined) {
    problems.push('REDIS_CLUSTER_NODES: set either it or REDIS_SENTINELS, not both');
    return single;
  }
  if (v.REDIS_SENTINELS === undefined && v.REDIS_SENTINEL_NAME !== undefined) problems.push('REDIS_SENTINEL_NAME: needs REDIS_SENTINELS');
  if (v.REDIS_CLUSTER_NODES !== undefined) {
    const nodes = parseHostPorts(v.REDIS_CLUSTER_NODES);
    if (typeof nodes === 'string') problems.push(`REDIS_CLUSTER_NODES: ${nodes}`);
    // A cluster has one database; a REDIS_URL naming another would be silently ignored.
    else if (auth.db !== 0) problems.push('REDIS_URL: a Redis Cluster has only database 0; remove the /' + auth.db + ' from REDIS_URL');
    else return { kind: 'cluster', nodes, auth };
  }
  if (v.REDIS_SENTINELS !== undefined) {
    const sentinels = parseHostPorts(v.REDIS_SENTINELS);
    if (typeof sentinels === 'string') problems.push(`REDIS_SENTINELS: ${sentinels}`);
    else if (v.REDIS_SENTINEL_NAME === undefined)
      problems.push('REDIS_SENTINEL_NAME: required with REDIS_SENTINELS (the master group name, as in sentinel.conf)');
    else return { kind: 'sentinel', sentinels, name: v.REDIS_SENTINEL_NAME, auth, sentinelPassword: v.REDIS_SENTINEL_PASSWORD };
  }
  return single;
}

/**
 * The ports callbacks may use: the list given, or 80 and 443; any port when private destinations are
 * allowed and no list is given (test receivers listen on random ports). A string is the problem.
 */
function parsePorts(value: string | undefined, allowPrivate: boolean): Set<number> | undefined | string {
  if (value === undefined) return allowPrivate ? undefined : new Set([80, 443]);
  if (value.trim() === '*') return undefined;
  const ports = value.split(',').map((p) => Number(p.trim()));
  const bad = ports.find((p) => p < 1 || p > 65535);
  return bad === undefined ? new Set(ports) : `${bad} is not a port (1-65535)`;
}

/** Exponential backoff's settings when only some of MAX_ATTEMPTS, RETRY_BASE_MS, RETRY_MAX_MS are set. */
const EXPONENTIAL_DEFAULTS = { maxAttempts: 10, baseMs: 1000, maxMs: 3_600_000 };

/** RETRY_SCHEDULE, or the exponential settings, or the default schedule; problems named by variable. */
function retryPolicyOf(v: z.infer<typeof schema>, problems: string[]): RetryPolicy {
  const exponential = (['MAX_ATTEMPTS', 'RETRY_BASE_MS', 'RETRY_MAX_MS'] as const).filter((name) => v[name] !== undefined);
  if (v.RETRY_SCHEDULE !== undefined) {
    if (exponential.length > 0) {
      problems.push(
        `RETRY_SCHEDULE: cannot be combined with ${exponential.join(', ')}; set the schedule or the exponential backoff, not both`,
      );
    }
    try {
      return { kind: 'schedule', delaysMs: Object.freeze(parseRetrySchedule(v.RETRY_SCHEDULE)) };
    } catch (err) {
      problems.push(`RETRY_SCHEDULE: ${(err as Error).message}`);
      return { kind: 'schedule', delaysMs: DEFAULT_RETRY_SCHEDULE_MS };
    }
  }
  if (exponential.length === 0) return { kind: 'schedule', delaysMs: DEFAULT_RETRY_SCHEDULE_MS };
  const policy = {
    kind: 'exponential' as const,
    maxAttempts: v.MAX_ATTEMPTS ?? EXPONENTIAL_DEFAULTS.maxAttempts,
    baseMs: v.RETRY_BASE_MS ?? EXPONENTIAL_DEFAULTS.baseMs,
    maxMs: v.RETRY_MAX_MS ?? EXPONENTIAL_DEFAULTS.maxMs,
  };
  if (policy.maxMs < policy.baseMs) problems.push('RETRY_MAX_MS: cannot be smaller than RETRY_BASE_MS');
  return policy;
}

/** An exported-but-empty variable (FOO=) means "use the default", as most daemons treat it. */
function withoutEmptyValues(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value !== '') out[key] = value;
  }
  return out;
}
