import type { Queue } from 'bullmq';

/**
 * Tells whether Redis has lost its data since the last look: a marker key that the producers keep
 * set. Redis restarted empty, FLUSHALL, or a failover to a replica that never had it: the marker is
 * gone, and so are the jobs that the queue leases in Postgres stand for. The first look on a new
 * Redis also says "reset", which is harmless: there are no jobs to lose then either.
 * Read-then-write is enough because producers run one at a time (the advisory lock).
 */
export async function redisWasReset(queue: Queue): Promise<boolean> {
  const client = await queue.getBackend().client;
  const key = resetMarkerKey(queue);
  if ((await client.get(key)) !== null) return false;
  await client.set(key, new Date().toISOString());
  return true;
}

/** The marker's key, beside the queue's own keys (which BullMQ's obliterate does not know of). */
export function resetMarkerKey(queue: Queue): string {
  return `${queue.opts.prefix ?? 'bull'}:${queue.name}:order-callbacks:marker`;
}

/** Removes a queue for good: BullMQ's keys and the marker. For tests and benchmarks, never the daemon. */
export async function obliterateWithMarker(queue: Queue): Promise<void> {
  await queue.obliterate({ force: true });
  await (await queue.getBackend().client).del(resetMarkerKey(queue));
}
