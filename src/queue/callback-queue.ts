import { type ConnectionOptions, type JobsOptions, type JobType, Queue } from 'bullmq';
import type { RedisOptions } from 'ioredis';

/** What a job carries: the order's id (and a routing hint). Everything else is read from Postgres under a claim. */
export interface CallbackJobData {
  orderId: string;
  /**
   * The partner's origin as the producer read it: lets a worker hand back the order of a partner whose
   * circuit is open with one statement, without claiming it. A hint, never the truth.
   */
  origin?: string;
}

/**
 * Job states that hold a job in Redis until a worker finishes it: what the queue bound counts. A paused
 * queue's jobs stay in `waiting` (BullMQ 6); `paused` is the list an older BullMQ's pause left, which
 * BullMQ's count script still reads though its types no longer name it.
 */
export const UNFINISHED_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused' as JobType] as const;

/** Idle connections send TCP keepalives after this long, so a path that died is found while idle. */
export const REDIS_KEEPALIVE_DELAY_MS = 10_000;

/**
 * BullMQ's connection options for a daemon: commands wait for Redis to come back rather than fail
 * after a few retries (BullMQ requires this for workers), and the client reconnects for ever. With
 * `socketTimeoutMs`, a connection that was sent a command and hears nothing back for that long is ended
 * and opened again, and its unanswered commands go out again on the new one: a peer gone silent sends
 * no FIN or RST, and every command on it would wait for as long as TCP retransmits.
 */
export function queueRedisOptions(socketTimeoutMs?: number): RedisOptions {
  return {
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(100 * 2 ** times, 2000),
    ...(socketTimeoutMs === undefined ? {} : { socketTimeout: socketTimeoutMs, keepAlive: REDIS_KEEPALIVE_DELAY_MS }),
  };
}

/** The daemon's queue connection to one Redis server at `redisUrl` (tests and benchmarks use it too). */
export function redisConnection(redisUrl: string, socketTimeoutMs?: number): ConnectionOptions {
  return { url: redisUrl, ...queueRedisOptions(socketTimeoutMs) } as ConnectionOptions;
}

/**
 * The job id for an order: derived from the order id alone, so a second add() of the same order while
 * its job exists is a no-op. BullMQ refuses all-digit custom ids, hence the prefix.
 */
export function jobIdFor(orderId: string): string {
  return `order-${orderId}`;
}

/**
 * Jobs are removed as soon as they finish, completed or failed. BullMQ ignores add() for a jobId that
 * still exists in any state, so a kept job would silently block the same order from being enqueued
 * again while it is still at 5. Postgres keeps the history (delivery_log); Redis keeps none.
 * attempts: 1 because retries are Postgres' business (attempts, next_attempt_at), not the queue's.
 */
export const JOB_OPTIONS: JobsOptions = { removeOnComplete: true, removeOnFail: true, attempts: 1 };

/**
 * BullMQ keeps its last 10,000 job events in a stream by default (about 0.7 MB per queue); the
 * daemon reads none of them (state is in Postgres), so keep a short tail for anyone debugging.
 */
const EVENTS_KEPT = 500;

/**
 * A callback queue on `connection`: BullMQ's connection options, or a cluster client, which BullMQ leaves
 * open when the queue closes (its owner disconnects it: CallbackQueues).
 */
export function callbackQueueOn(name: string, connection: ConnectionOptions, prefix: string): Queue<CallbackJobData> {
  return new Queue<CallbackJobData>(name, { connection, prefix, streams: { events: { maxLen: EVENTS_KEPT } } });
}

/** Jobs in Redis that no worker has finished: the number the MAX_QUEUED_JOBS bound applies to. */
export async function countUnfinishedJobs(queue: Queue<CallbackJobData>): Promise<number> {
  const counts = await queue.getJobCounts(...UNFINISHED_STATES);
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}
