import { randomBytes } from 'node:crypto';

import { Queue } from 'bullmq';

import { redisConnection } from '../../src/queue/callback-queue';
import { obliterateWithMarker } from '../../src/queue/redis-reset-detector';

export const SHARED_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A queue name no other test file uses, so files can share the one Redis. */
export function uniqueQueueName(): string {
  return `oc-test-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Removes every key of a test queue from the shared Redis. */
export async function obliterateQueue(name: string, redisUrl = SHARED_REDIS_URL): Promise<void> {
  const queue = new Queue(name, { connection: redisConnection(redisUrl) });
  try {
    await obliterateWithMarker(queue);
  } finally {
    await queue.close();
  }
}
