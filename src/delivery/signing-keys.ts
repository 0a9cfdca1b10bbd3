import type { Db } from '../db/connection';
import { listActiveSecrets } from '../db/partner-secrets';
import type { Logger } from '../observability/logger';
import { keyOfSecret } from './sign';

/**
 * The keys a callback to a host is signed with: that partner's active secrets (newest first), or the
 * default CALLBACK_SECRET. All active secrets are read in one query and kept for `refreshMs`, so a
 * rotation takes effect within that time without a query per callback. When the refresh fails, the
 * keys last read are used: signing with a known key beats not delivering.
 */
export class SigningKeys {
  private byHost = new Map<string, Buffer[]>();
  private loadedAt = 0;
  private loading?: Promise<void>;

  constructor(
    private readonly db: Db,
    private readonly defaultKey: Buffer,
    private readonly refreshMs: number,
    private readonly logger: Logger,
  ) {}

  async keysFor(host: string): Promise<Buffer[]> {
    if (Date.now() - this.loadedAt > this.refreshMs) await this.refresh();
    return this.byHost.get(host.toLowerCase()) ?? [this.defaultKey];
  }

  private refresh(): Promise<void> {
    this.loading ??= listActiveSecrets(this.db)
      .then((rows) => {
        const byHost = new Map<string, Buffer[]>();
        for (const { host, secret } of rows) byHost.set(host, [...(byHost.get(host) ?? []), keyOfSecret(secret)]);
        this.byHost = byHost;
        this.loadedAt = Date.now();
      })
      .catch((err) => this.logger.warn({ err }, 'could not read partner secrets; signing with the ones read before'))
      .finally(() => (this.loading = undefined));
    return this.loading;
  }
}
