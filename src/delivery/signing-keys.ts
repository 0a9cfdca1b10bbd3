import type { Db } from '../db/connection';
import { listActiveSecrets } from '../db/partners';
import type { Logger } from '../observability/logger';
import { withTimeout } from '../with-timeout';
import { keyOfSecret } from './sign';

/** The secrets query gives up after this long: it must not hold an attempt (and its claim) for ever. */
const READ_TIMEOUT_MS = 5000;

/**
 * Keys last read this long ago (or more than a few refresh periods ago, when that is longer) may be
 * stale: a partner may have rotated since, and a callback signed with a retired key is answered 401.
 */
const TRUSTED_FOR_MS = 60_000;

/**
 * The keys a callback to a host is signed with: that partner's active secrets (newest first), or the
 * default CALLBACK_SECRET. All active secrets are read in one query and kept for `refreshMs`, so a
 * rotation takes effect within that time without a query per callback. When a refresh fails, the keys
 * last read are used for a while (TRUSTED_FOR_MS); before the first read succeeds, or once those are
 * too old, the keys are unknown, and no callback is signed with a key that may be wrong: not with
 * CALLBACK_SECRET in place of a partner's own, which the partner would answer 401 and fail the order.
 */
export class SigningKeys {
  private byHost = new Map<string, Buffer[]>();
  /** performance.now() of the last successful read; undefined before the first. */
  private loadedAt?: number;
  private loading?: Promise<void>;

  constructor(
    private readonly db: Db,
    private readonly defaultKey: Buffer,
    private readonly refreshMs: number,
    private readonly logger: Logger,
  ) {}

  /** The keys for `host`, or undefined when they are not known: hand the order back, do not sign. */
  async keysFor(host: string): Promise<Buffer[] | undefined> {
    if (this.loadedAt === undefined || performance.now() - this.loadedAt > this.refreshMs) await this.refresh();
    if (this.loadedAt === undefined || performance.now() - this.loadedAt > Math.max(TRUSTED_FOR_MS, 3 * this.refreshMs)) return undefined;
    return this.byHost.get(host.toLowerCase()) ?? [this.defaultKey];
  }

  private refresh(): Promise<void> {
    // withTimeout as well: the query's own timeout cancels it over a new connection, and waits for that.
    this.loading ??= withTimeout(listActiveSecrets(this.db, READ_TIMEOUT_MS), 2 * READ_TIMEOUT_MS, 'reading partner secrets did not end')
      .then((rows) => {
        const byHost = new Map<string, Buffer[]>();
        for (const { host, secret } of rows) byHost.set(host, [...(byHost.get(host) ?? []), keyOfSecret(secret)]);
        this.byHost = byHost;
        this.loadedAt = performance.now();
      })
      .catch((err) => this.logger.warn({ err }, 'could not read partner secrets; using the ones read before while they are recent'))
      .finally(() => (this.loading = undefined));
    return this.loading;
  }
}
