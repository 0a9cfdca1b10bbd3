import type { Db } from './db/connection';
import type { Logger } from './observability/logger';
import type { JobCounter } from './queue/shards';
import { withTimeout } from './with-timeout';

/** One check may not hang: the Redis client queues commands while it reconnects. */
const CHECK_TIMEOUT_MS = 5000;

/**
 * Waits until Postgres and Redis both answer, logging while they do not, so a replica that starts
 * before its services (a reboot, a compose up) comes up by itself instead of crash-looping.
 * Gives up when `signal` aborts (the process is asked to stop meanwhile).
 */
export async function waitForServices(db: Db, queue: JobCounter, logger: Logger, signal: AbortSignal): Promise<void> {
  const checks: [string, () => Promise<unknown>][] = [
    ['postgres', () => db.raw('SELECT 1')],
    ['redis', () => queue.getJobCounts('waiting')],
  ];
  for (const [name, check] of checks) {
    for (let delayMs = 250; ; delayMs = Math.min(delayMs * 2, 5000)) {
      if (signal.aborted) throw new Error(`stopped while waiting for ${name}`);
      try {
        await withTimeout(check(), CHECK_TIMEOUT_MS, `${name} did not answer within ${CHECK_TIMEOUT_MS} ms`);
        break;
      } catch (err) {
        logger.warn({ err, service: name, retryInMs: delayMs }, `${name} is not answering yet; waiting`);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }
}
