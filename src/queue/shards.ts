import type { JobState, JobType, Queue } from 'bullmq';
import type { Cluster } from 'ioredis';

import type { Config } from '../config';
import { type CallbackJobData, callbackQueueOn, jobIdFor, queueRedisOptions } from './callback-queue';
import { bullConnection, queuePrefix } from './redis-topology';

/**
 * Where an order's job goes: the remainder of its id by QUEUE_SHARDS, without its sign (ids may be
 * negative). The lease statements pick a shard's orders with the same (SHARD_OF_ID).
 */
export function shardOf(orderId: string | bigint, shards: number): number {
  const remainder = BigInt(orderId) % BigInt(shards);
  return Number(remainder < 0n ? -remainder : remainder);
}

/**
 * The queue name of a shard. Shard 0 keeps QUEUE_NAME itself, so one shard is the queue it always was,
 * and jobs left in it when the number of shards changes are still worked. `#` cannot be in QUEUE_NAME,
 * so no shard's name is another deployment's queue.
 */
export function shardQueueName(queueName: string, shard: number): string {
  return shard === 0 ? queueName : `${queueName}#${shard}`;
}

/** A shard's part of a per-process budget: `total` split over `shards`, at least 1 each. */
export function perShard(total: number, shards: number): number {
  return Math.max(1, Math.ceil(total / shards));
}

/** Job counts by state, added up over several queues. */
export function sumJobCounts(each: Record<string, number>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const counts of each) for (const [state, n] of Object.entries(counts)) total[state] = (total[state] ?? 0) + n;
  return total;
}

/** What reads queue depths (metrics, the start-up check) needs: one queue, or all shards summed. */
export interface JobCounter {
  getJobCounts(...states: JobType[]): Promise<Record<string, number>>;
}

/**
 * The queues of all shards. Each is a BullMQ queue of its own (on a Redis Cluster each under its own
 * hash tag, so they spread over the primaries); the job id stays derived from the order id alone.
 */
export class CallbackQueues implements JobCounter {
  readonly shards: readonly Queue<CallbackJobData>[];

  /** `owned`: a client the queues share, disconnected once they are closed. */
  constructor(
    queueName: string,
    shards: number,
    open: (name: string) => Queue<CallbackJobData>,
    private readonly owned?: Cluster,
  ) {
    this.shards = Array.from({ length: shards }, (_, shard) => open(shardQueueName(queueName, shard)));
  }

  /** The daemon's queues: on a cluster, one cluster client serves every shard's queue. */
  static open(config: Pick<Config, 'queueName' | 'queueShards' | 'redis'>, socketTimeoutMs?: number): CallbackQueues {
    const { connection, owned } = bullConnection(config.redis, queueRedisOptions(socketTimeoutMs));
    return new CallbackQueues(
      config.queueName,
      config.queueShards,
      (name) => callbackQueueOn(name, connection, queuePrefix(config.redis, name)),
      owned,
    );
  }

  /** The queue an order's job goes to. */
  forOrder(orderId: string): Queue<CallbackJobData> {
    return this.shards[shardOf(orderId, this.shards.length)];
  }

  /** Job counts summed over every shard, by state. */
  async getJobCounts(...states: JobType[]): Promise<Record<string, number>> {
    return sumJobCounts(await Promise.all(this.shards.map((queue) => queue.getJobCounts(...states))));
  }

  /** Job counts of each shard, by queue name. */
  async jobCountsByShard(...states: JobType[]): Promise<Map<string, Record<string, number>>> {
    const each = await Promise.all(this.shards.map((queue) => queue.getJobCounts(...states)));
    return new Map(this.shards.map((queue, i) => [queue.name, each[i]]));
  }

  /**
   * Where an order's job is: its shard's queue first, then the others (a job added before the number of
   * shards changed stays in the queue it was added to). 'unknown' when no queue has it.
   */
  async getJobState(orderId: string): Promise<JobState | 'unknown'> {
    const own = this.forOrder(orderId);
    for (const queue of [own, ...this.shards.filter((q) => q !== own)]) {
      const state = await queue.getJobState(jobIdFor(orderId));
      if (state !== 'unknown') return state;
    }
    return 'unknown';
  }

  on(event: 'error', listener: (err: Error) => void): void {
    for (const queue of this.shards) queue.on(event, listener);
  }

  async close(): Promise<void> {
    try {
      await Promise.all(this.shards.map((queue) => queue.close()));
    } finally {
      this.owned?.disconnect();
    }
  }
}
