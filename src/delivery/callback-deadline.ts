import type { AbortCause } from './classify-error';
import { whenAborted } from './when-aborted';

/**
 * When one callback in flight must stop early: its time budget ran out, or the daemon is shutting down.
 * It remembers which came first, which decides how the attempt is recorded. Not an AbortController with
 * a listener on the shutdown signal: those two cost ~10 µs of CPU per callback
 * (docs/decisions/0001-callbacks-through-undici-dispatch.md).
 */
export class CallbackDeadline {
  private firstCause: AbortCause | undefined;
  private stopRequest: ((reason: Error) => void) | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly leaveShutdown: () => void;

  constructor(shutdown: AbortSignal, budgetMs: number, budgetCause: AbortCause) {
    this.timer = setTimeout(() => this.fire(budgetCause), Math.max(0, budgetMs));
    this.leaveShutdown = whenAborted(shutdown, () => this.fire('shutdown'));
  }

  /** Why the callback was stopped, or undefined while it has not been. */
  get cause(): AbortCause | undefined {
    return this.firstCause;
  }

  /** How to stop the request (sendCallback tells it once); called at once when the deadline has passed. */
  onStop(stop: (reason: Error) => void): void {
    this.stopRequest = stop;
    if (this.firstCause) stop(new Error(`aborted: ${this.firstCause}`));
  }

  /** Stops the timer and leaves the shutdown list; the deadline fires no more. */
  dispose(): void {
    clearTimeout(this.timer);
    this.leaveShutdown();
  }

  private fire(why: AbortCause): void {
    if (this.firstCause) return;
    this.firstCause = why;
    this.stopRequest?.(new Error(`aborted: ${why}`));
  }
}
