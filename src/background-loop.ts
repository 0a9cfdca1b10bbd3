import type { Logger } from './observability/logger';

export interface BackgroundLoop {
  /** Run soon, without waiting for the interval (coalesced: many wakes, one run). */
  wake(): void;
  /** Stop ticking and wait for a run in progress. Safe before start and more than once. */
  stop(): Promise<void>;
}

/** After a failed run, the next comes this soon, doubling with each failure in a row, up to the interval. */
const FIRST_RETRY_MS = 250;

/**
 * The one shape of every background loop here: a timer calls `runOnce`; errors are logged and the
 * loop goes on, trying again sooner than the interval (a poll of minutes must not leave a failure
 * standing that long) but no sooner than its backoff, even when woken; a wake during a run schedules
 * exactly one more run.
 */
export function startBackgroundLoop(options: {
  name: string;
  intervalMs: number;
  /** One run. May return how long to wait before the next one, when sooner than the interval. */
  runOnce: () => Promise<number | void>;
  logger: Logger;
}): BackgroundLoop {
  const { name, intervalMs, runOnce, logger } = options;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let nextDelayMs = intervalMs;
  let failuresInARow = 0;
  /** performance.now() before which a failing loop does not run again, woken or not. */
  let retryAt = 0;
  let timer: NodeJS.Timeout | undefined;

  const schedule = (delayMs: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(run, delayMs);
  };
  /** As soon as it may: now, unless the last run failed and its retry is not due yet. */
  const scheduleSoon = () => schedule(Math.max(0, retryAt - performance.now()));

  function run(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    again = false;
    nextDelayMs = intervalMs;
    running = runOnce()
      .then((requested) => {
        failuresInARow = 0;
        retryAt = 0;
        if (typeof requested === 'number') nextDelayMs = Math.min(requested, intervalMs);
      })
      .catch((err) => {
        nextDelayMs = Math.min(FIRST_RETRY_MS * 2 ** failuresInARow, intervalMs);
        failuresInARow += 1;
        retryAt = performance.now() + nextDelayMs;
        logger.error({ err, loop: name, retryInMs: nextDelayMs }, 'background loop run failed; continuing');
      })
      .finally(() => {
        running = undefined;
        if (again) scheduleSoon();
        else schedule(nextDelayMs);
      });
  }

  schedule(0);
  let stopping: Promise<void> | undefined;
  return {
    wake: () => (running ? (again = true) : scheduleSoon()),
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        clearTimeout(timer);
        await running;
      })()),
  };
}
