import knex, { type Knex } from 'knex';
import { types, type Client, type ClientConfig } from 'pg';
import type { Logger } from '../observability/logger';
import { endWhenSilent, silenceBoundMs } from './end-silent-connections';

export type Db = Knex;

// timestamptz stays a Date, bigint (order ids) stays a string: JavaScript numbers cannot hold every
// bigint, and an order id is never used for arithmetic.
types.setTypeParser(types.builtins.INT8, (value: string) => value);

/** How long opening a connection may take: an address that swallows SYNs must not hold a caller. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Idle connections send TCP keepalives after this long, so a path that died is found while idle. */
const KEEPALIVE_DELAY_MS = 10_000;

/** The bounds a daemon's sessions run under: no statement, open transaction or silence lasts for ever. */
export interface SessionBounds {
  statementTimeoutMs: number;
  /** Told when a connection is ended for its silence. */
  logger: Logger;
}

/**
 * pg settings for a bounded session: statement and idle-transaction timeouts on the server, a bound on
 * connecting, and TCP keepalives.
 */
export function boundedSession(
  statementTimeoutMs: number,
): Pick<ClientConfig, 'statement_timeout' | 'idle_in_transaction_session_timeout' | 'connectionTimeoutMillis' | 'keepAlive' | 'keepAliveInitialDelayMillis'> {
  return {
    statement_timeout: statementTimeoutMs,
    idle_in_transaction_session_timeout: statementTimeoutMs,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  };
}

/** Ends `client` when it goes silent (endWhenSilent), saying so in the log. */
export function watchSilence(client: Client, statementTimeoutMs: number, logger: Logger): void {
  const silenceMs = silenceBoundMs(statementTimeoutMs);
  endWhenSilent(client, silenceMs, (err) => logger.warn({ err, silenceMs }, 'a Postgres connection did not answer; ending it'));
}

/**
 * A knex pool on the primary. Every read that decides anything goes through it, inside the
 * conditional statement that acts on it: there is deliberately no read-replica option. With `bounds`
 * (the daemon), every session runs under them; admin commands and migrations run unbounded.
 */
export function createDb(databaseUrl: string, poolMax = 10, bounds?: SessionBounds): Db {
  return knex({
    client: 'pg',
    connection: { connectionString: databaseUrl, application_name: 'order-callbacks', ...(bounds ? boundedSession(bounds.statementTimeoutMs) : {}) },
    pool: {
      min: 0,
      max: poolMax,
      ...(bounds
        ? {
            afterCreate: (client: Client, done: (err: Error | null, client: Client) => void) => {
              watchSilence(client, bounds.statementTimeoutMs, bounds.logger);
              done(null, client);
            },
          }
        : {}),
    },
    acquireConnectionTimeout: 10_000,
  });
}
