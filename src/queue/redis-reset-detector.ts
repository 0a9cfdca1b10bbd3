import type { Queue } from 'bullmq';

import type { Db } from '../db/connection';
import { recordQueueGeneration, resetQueueGeneration } from '../db/queue-generation';

/** The marker (nil when gone) and the generation, incremented: one round trip, both keys declared. */
const LOOK = `return { redis.call('GET', KEYS[1]) or false, redis.call('INCR', KEYS[2]) }`;

/** How often a producer compares Redis' generation with the highest one Postgres has seen. */
const GENERATION_CHECK_EVERY_MS = 2000;

/**
 * Tells whether Redis has lost the queue's data since the last look, so the producers can offer its
 * orders again at once rather than when their queue leases run out:
 * - a marker key the producers keep set: gone when Redis restarted empty, was flushed, or failed over
 *   to a replica that never had it (the first look at a new Redis says "lost" too, which is harmless:
 *   there are no jobs to lose);
 * - a generation counter the producers increment in Redis at each run: a Redis that came back with
 *   older data (a restore from an older snapshot, a replica that lagged) shows a generation no higher
 *   than one it showed before, though the marker survived. Compared with the highest this producer has
 *   seen on every run, and every 2 s with the highest any producer has seen, kept in Postgres (for a
 *   producer that restarted, or that another had taken turns with).
 * The loss counts as dealt with (the marker set, the generation taken as the new mark) only once the
 * caller says so, after forgetting the leases: if that fails, the next look finds the loss again.
 */
export class RedisLossDetector {
  private checkedAt = -Infinity;
  private generation = 0;
  /** The highest generation this producer has seen: checked on every run, at no cost. */
  private highest = 0;
  /** A loss found and not yet dealt with: it stands until dealtWith(), whatever the next looks show. */
  private pending?: string;
  private readonly defined = new WeakSet<object>();

  constructor(
    private readonly queue: Queue,
    private readonly db: Db,
  ) {}

  /** Why Redis' data is known lost, or undefined. */
  async lost(): Promise<string | undefined> {
    const [marker, generation] = await this.look();
    this.generation = generation;
    if (marker === null) this.pending ??= 'its marker key is gone (restarted empty, flushed, or failed over)';
    else if (generation <= this.highest) this.pending ??= wentBack(this.highest, generation);
    else {
      this.highest = generation;
      if (performance.now() - this.checkedAt >= GENERATION_CHECK_EVERY_MS) {
        this.checkedAt = performance.now();
        const before = await recordQueueGeneration(this.db, this.queue.name, generation);
        if (before !== undefined && generation <= before) this.pending ??= wentBack(before, generation);
      }
    }
    return this.pending;
  }

  /**
   * Jobs were added: the generation goes up again. A Redis that kept the run's first increment but lost
   * its jobs (a replica promoted before they reached it) then shows a generation that went back.
   */
  async jobsAdded(): Promise<void> {
    const [, generation] = await this.look();
    this.highest = Math.max(this.highest, generation);
  }

  private async look(): Promise<[string | null, number]> {
    const client = await this.queue.getBackend().client;
    if (!this.defined.has(client)) {
      client.defineCommand('orderCallbacksLookAtRedis', { numberOfKeys: 2, lua: LOOK });
      this.defined.add(client);
    }
    const [marker, generation] = (await client.runCommand('orderCallbacksLookAtRedis', [
      resetMarkerKey(this.queue),
      generationKey(this.queue),
    ])) as [string | null, number];
    return [marker, Number(generation)];
  }

  /** The loss was dealt with: the marker is set again and this generation is the new mark. */
  async dealtWith(): Promise<void> {
    const client = await this.queue.getBackend().client;
    await client.set(resetMarkerKey(this.queue), new Date().toISOString());
    await resetQueueGeneration(this.db, this.queue.name, this.generation);
    this.highest = this.generation;
    this.checkedAt = performance.now();
    this.pending = undefined;
  }
}

const wentBack = (from: number, to: number) =>
  `its generation went back from ${from} to ${to} (older data: a restore or a lagging replica)`;

/** The marker's key, beside the queue's own keys (which BullMQ's obliterate does not know of). */
export function resetMarkerKey(queue: Queue): string {
  return `${queue.opts.prefix ?? 'bull'}:${queue.name}:order-callbacks:marker`;
}

function generationKey(queue: Queue): string {
  return `${queue.opts.prefix ?? 'bull'}:${queue.name}:order-callbacks:generation`;
}

/**
 * Removes a queue for good: BullMQ's keys, the marker and the generation, and the partner state kept
 * under the queue's name (directory and each partner's keys; see directoryKeys and partnerKeys). For
 * tests and benchmarks, never the daemon.
 */
export async function obliterateWithMarker(queue: Queue): Promise<void> {
  await queue.obliterate({ force: true });
  const client = await queue.getBackend().client;
  const keys = [resetMarkerKey(queue), generationKey(queue)];
  for (const pattern of [`oc:{${queue.name}}:*`, `oc:{${queue.name}|*`]) {
    let cursor = '0';
    do {
      const [next, found] = await client.scan(cursor, { MATCH: pattern, COUNT: 1000 });
      keys.push(...found);
      cursor = next;
    } while (cursor !== '0');
  }
  await client.del(...keys);
}
