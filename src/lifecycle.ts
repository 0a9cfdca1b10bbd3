import type { Logger } from './observability/logger';

type Releaser = () => Promise<unknown> | unknown;

/**
 * Shutdown as a list of releasers, run in reverse order of start, each once, all of them even when
 * one fails. stop() is idempotent: every caller gets the same promise.
 */
export class Lifecycle {
  private readonly releasers: { name: string; release: Releaser }[] = [];
  private stopping?: Promise<void>;

  constructor(private readonly logger: Logger) {}

  add(name: string, release: Releaser): void {
    this.releasers.push({ name, release });
  }

  stop(): Promise<void> {
    this.stopping ??= this.releaseAll();
    return this.stopping;
  }

  private async releaseAll(): Promise<void> {
    for (const { name, release } of [...this.releasers].reverse()) {
      try {
        await release();
      } catch (err) {
        this.logger.error({ err, component: name }, 'releasing failed; continuing with the rest');
      }
    }
  }
}
