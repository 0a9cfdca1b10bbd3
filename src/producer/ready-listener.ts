import { Client } from 'pg';
import type { Logger } from '../observability/logger';

export const READY_CHANNEL = 'order_callbacks_ready';

/**
 * A dedicated Postgres session for the producer: it LISTENs for "an order became ready" and holds the
 * producer's advisory lock while this replica is the one enqueuing. The session reconnects by itself
 * when Postgres drops it (restart, pg_terminate_backend); the lock, being a session lock, is released by
 * Postgres at once when the session or the process dies, and forgotten here with the session.
 */
export class ReadyListener {
  private client?: Client;
  private connecting?: Promise<void>;
  private closed = false;
  private retryTimer?: NodeJS.Timeout;
  private retryDelayMs = 100;
  /** Advisory locks taken, by key, with the session that took them: one of a lost session is not held. */
  private readonly held = new Map<string, Client>();

  constructor(
    private readonly databaseUrl: string,
    private readonly onReady: () => void,
    private readonly logger: Logger,
  ) {}

  start(): Promise<void> {
    return this.connect();
  }

  /**
   * Tries the session-level advisory lock named by `key`; false when held elsewhere or disconnected.
   * True at once, without asking Postgres, while this session already holds it: Postgres counts
   * repeated acquisitions, and one unlock must be enough to let the lock go.
   */
  async tryLock(key: string): Promise<boolean> {
    const client = this.client;
    if (!client) return false;
    if (this.held.get(key) === client) return true;
    const result = await client.query('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [key]);
    const locked = result.rows[0].locked === true;
    if (locked) this.held.set(key, client);
    return locked;
  }

  async unlock(key: string): Promise<void> {
    const client = this.held.get(key);
    this.held.delete(key);
    try {
      await client?.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
    } catch (err) {
      // A session that died took its locks with it. One that is still ours may still hold the lock,
      // unknown to us: end it, which releases it, rather than keep a lock no run will let go.
      if (client && client === this.client) this.lost(client, err as Error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private connect(): Promise<void> {
    this.connecting ??= this.openSession().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async openSession(): Promise<void> {
    const client = new Client({ connectionString: this.databaseUrl, application_name: 'order-callbacks-producer' });
    client.on('notification', () => this.onReady());
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${READY_CHANNEL}`);
    } catch (err) {
      this.lost(client, err as Error);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retryDelayMs = 100;
    // Notifications sent while we were not listening are lost: look once now.
    this.onReady();
  }

  private lost(client: Client, err?: Error): void {
    if (this.client === client) this.client = undefined;
    client.removeAllListeners('notification');
    client.end().catch(() => undefined);
    if (this.closed || this.retryTimer) return;
    this.logger.warn({ err }, 'producer lost its Postgres session; reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed) void this.connect();
    }, this.retryDelayMs);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, 5000);
  }
}
