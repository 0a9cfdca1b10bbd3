import { whenAborted } from './when-aborted';

/**
 * Attempts waiting, in this process, for a partner at its in-flight cap to free a slot. Bounded twice:
 * each wait by time, and each partner's line by length. Waiting is offered only for a partner that
 * answers well (HostGate's `waitable`), whose slots turn over within moments, so the line may be long
 * (the worker sets it to its concurrency); a slow or silent partner gets no line at all. A wait that
 * ends without a slot hands its order back.
 */
export class SlotWaiters {
  private readonly lines = new Map<string, (() => void)[]>();

  constructor(private readonly maxWaitingPerHost: number) {}

  /**
   * Resolves true when a slot for `host` was freed (the caller must still be admitted: another attempt
   * may take it first), false at `timeoutMs`, when the line is full, or when `signal` aborts.
   */
  wait(host: string, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const line = this.lines.get(host) ?? [];
    if (line.length >= this.maxWaitingPerHost || timeoutMs <= 0 || signal.aborted) return Promise.resolve(false);
    this.lines.set(host, line);
    return new Promise<boolean>((resolve) => {
      let leaveShutdown = () => {};
      const done = (freed: boolean) => {
        clearTimeout(timer);
        leaveShutdown();
        const index = line.indexOf(onFreed);
        if (index >= 0) line.splice(index, 1);
        if (line.length === 0 && this.lines.get(host) === line) this.lines.delete(host);
        resolve(freed);
      };
      const onFreed = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      leaveShutdown = whenAborted(signal, () => done(false));
      line.push(onFreed);
    });
  }

  /** A callback to `host` ended: the first in line may try for its slot. */
  freed(host: string): void {
    this.lines.get(host)?.[0]?.();
  }
}
