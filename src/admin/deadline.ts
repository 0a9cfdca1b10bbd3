/**
 * One bound for a whole admin command: every wait in it races the same clock, so three slow calls
 * cannot add up to three times the bound.
 */
export class Deadline {
  readonly endsAt: number;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly ms: number,
    now = Date.now(),
  ) {
    this.endsAt = now + ms;
    // Not unref'd (as AbortSignal.timeout's is): a connection that hears nothing may hold no handle, and
    // the process has to live on to say which service did not answer.
    this.timer = setTimeout(() => this.controller.abort(), ms);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get expired(): boolean {
    return this.controller.signal.aborted;
  }

  remainingMs(now = Date.now()): number {
    return Math.max(0, this.endsAt - now);
  }

  /** `promise`, or a rejection with `onExpiry()` when the deadline comes first. */
  race<T>(promise: Promise<T>, onExpiry: () => Error): Promise<T> {
    if (this.expired) return Promise.reject(onExpiry());
    let stop = () => undefined as void;
    const expiry = new Promise<never>((_, reject) => {
      const listener = () => reject(onExpiry());
      this.signal.addEventListener('abort', listener, { once: true });
      stop = () => this.signal.removeEventListener('abort', listener);
    });
    return Promise.race([promise, expiry]).finally(stop);
  }

  /** What a wait that the deadline ended reports. */
  expiredError(): Error {
    return new Error(`no answer within ${(this.ms / 1000).toFixed(1)} s`);
  }

  /** The command is done: its clock stops holding the process. */
  end(): void {
    clearTimeout(this.timer);
  }
}
