import type { Logger } from './observability/logger';

/**
 * How work that must finish in time is doing: `moving` while everything runs within its bound;
 * `stuck` once something has run past it (/readyz goes red); `wedged` past twice the bound (the process
 * exits non-zero for its supervisor to restart it: what a wait without a bound of its own holds up,
 * new connections will not free).
 */
export type Progress = 'moving' | 'stuck' | 'wedged';

export function progressOf(longestRunningMs: number, boundMs: number): Progress {
  if (longestRunningMs >= 2 * boundMs) return 'wedged';
  if (longestRunningMs >= boundMs) return 'stuck';
  return 'moving';
}

/**
 * Watches work that the connections' own bounds (statement timeout, silence, socket timeout) should
 * already end in time: a statement batch above all, which every attempt in flight waits on. Times are
 * performance.now(), which no clock step moves.
 */
export class Watchdog {
  private readonly running = new Map<number, { what: string; since: number }>();
  private nextId = 0;

  constructor(readonly boundMs: number) {}

  async watch<T>(what: string, work: () => Promise<T>): Promise<T> {
    const id = this.nextId++;
    this.running.set(id, { what, since: performance.now() });
    try {
      return await work();
    } finally {
      this.running.delete(id);
    }
  }

  /** The longest-running piece of work, if any, and how it is doing. */
  check(now = performance.now()): { progress: Progress; what?: string; runningMs: number } {
    let longest: { what: string; since: number } | undefined;
    for (const entry of this.running.values()) if (!longest || entry.since < longest.since) longest = entry;
    const runningMs = longest ? now - longest.since : 0;
    return { progress: progressOf(runningMs, this.boundMs), what: longest?.what, runningMs };
  }
}

/**
 * The watchdog's bound for a daemon: a batch waits at most for a connection (10 s), its statement
 * (the statement timeout), and the silence that ends a connection that does not answer (silenceBoundMs:
 * 1.5 × it, at least 5 s more), with room for a retry. 120 s with the default statement timeout.
 */
export function watchdogBoundMs(statementTimeoutMs: number): number {
  return 30_000 + 3 * statementTimeoutMs;
}

/** How often the watchdog is looked at: a small part of its bound. */
const WATCHDOG_CHECK_MS = 1000;

/**
 * Looks at the watchdog every second: logs its changes of mind, and calls `onWedged` while work is
 * wedged (the daemon exits non-zero). Returns the timer, for the daemon to clear when it stops.
 */
export function watchProgress(watchdog: Watchdog, logger: Logger, onWedged?: () => void): NodeJS.Timeout {
  let last: Progress = 'moving';
  const timer = setInterval(() => {
    const { progress, what, runningMs } = watchdog.check();
    const detail = { what, runningMs: Math.round(runningMs), boundMs: watchdog.boundMs };
    if (progress === 'wedged') {
      logger.fatal(detail, 'work has run past twice its bound; exiting for the supervisor to restart the process');
      onWedged?.();
    } else if (progress === 'stuck' && last === 'moving') {
      logger.error(detail, 'work has run past its bound; /readyz is red until it ends');
    } else if (progress === 'moving' && last !== 'moving') {
      logger.info('work is moving again');
    }
    last = progress;
  }, WATCHDOG_CHECK_MS);
  timer.unref();
  return timer;
}
