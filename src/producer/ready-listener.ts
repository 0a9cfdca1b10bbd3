import { Client } from 'pg';

import { boundedConnection, boundSession, type SessionBounds } from '../db/connection';
import { READY_CHANNEL } from '../db/ready-notifications';
import type { Logger } from '../observability/logger';

export { READY_CHANNEL };

/**
 * How often the session is asked something while it only listens: a silent path is found by a
 * statement that gets no answer (SilenceWatch), and a listening session sends none of its own.
 */
const HEARTBEAT_MS = 10_000;

/**
 * A dedicated Postgres session for the producer: it LISTENs for "an order became ready". The session
 * reconnects by itself when Postgres drops it (restart, pg_terminate_backend) and when it goes silent.
 */
export class ReadyListener {
  private client?: Client;
  private connecting?: Promise<void>;
  private closed = false;
  private retryTimer?: NodeJS.Timeout;
  private heartbeat?: NodeJS.Timeout;
  private retryDelayMs = 100;

  constructor(
    private readonly databaseUrl: string,
    /** Told each notification's payload; called without one when notifications may have been missed. */
    private readonly onReady: (payload?: string) => void,
    private readonly logger: Logger,
    /** The daemon's session bounds; unbounded without. */
    private readonly bounds?: SessionBounds,
  ) {}

  start(): Promise<void> {
    return this.connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
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
    const client = new Client({
      connectionString: this.databaseUrl,
      application_name: 'order-callbacks-producer',
      ...(this.bounds ? boundedConnection() : {}),
    });
    client.on('notification', (message) => this.onReady(message.payload));
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      if (this.bounds) await boundSession(client, this.bounds);
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
    clearInterval(this.heartbeat);
    // A failed heartbeat needs no handling here: the client's 'error' or 'end' reconnects.
    this.heartbeat = setInterval(() => void client.query('SELECT 1').catch(() => undefined), HEARTBEAT_MS);
    // Notifications sent while we were not listening are lost: look once now.
    this.onReady();
  }

  private lost(client: Client, err?: Error): void {
    if (this.client === client) {
      this.client = undefined;
      clearInterval(this.heartbeat);
    }
    client.removeAllListeners('notification');
    client.end().catch(() => undefined);
    // A late word from a session already replaced: the new one is not lost.
    if (this.closed || this.retryTimer || (this.client && this.client !== client)) return;
    this.logger.warn({ err }, 'producer lost its Postgres session; reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed) void this.connect();
    }, this.retryDelayMs);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, 5000);
  }
}
