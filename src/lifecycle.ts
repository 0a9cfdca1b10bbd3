import type { Logger } from './observability/logger';
import { withTimeout } from './with-timeout';

/** May return a promise, which the stop awaits. */
type Releaser = () => unknown;

/** How long one releaser may take unless told otherwise: a service that is down must not hold up the exit. */
const DEFAULT_RELEASE_TIMEOUT_MS = 5000;

/**
 * Shutdown as a list of releasers, run in reverse order of start, each once, all of them even when
 * one fails or hangs (a close() that waits for a Redis that is gone). stop() is idempotent: every
 * caller gets the same promise.
 */
export class Lifecycle {
  private readonly releasers: { name: string; release: Releaser; timeoutMs: number }[] = [];
  private stopping?: Promise<void>;

  constructor(private readonly logger: Logger) {}

  add(name: string, release: Releaser, timeoutMs = DEFAULT_RELEASE_TIMEOUT_MS): void {
    this.releasers.push({ name, release, timeoutMs });
  }

  stop(): Promise<void> {
    this.stopping ??= this.releaseAll();
    return this.stopping;
  }

  private async releaseAll(): Promise<void> {
    for (const { name, release, timeoutMs } of [...this.releasers].reverse()) {
      try {
        await withTimeout(Promise.resolve().then(release), timeoutMs, `${name} did not close within ${timeoutMs} ms`);
      } catch (err) {
        this.logger.error({ err, component: name }, 'releasing failed; continuing with the rest');
      }
    }
  }
}
