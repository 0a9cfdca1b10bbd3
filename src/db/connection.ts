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

/** pg settings for a bounded session, on the client's side: a bound on connecting, and TCP keepalives. */
export function boundedConnection(): Pick<ClientConfig, 'connectionTimeoutMillis' | 'keepAlive' | 'keepAliveInitialDelayMillis'> {
  return { connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS };
}

/**
 * Bounds a new session: statement and idle-transaction timeouts on the server, set with SET rather
 * than as startup parameters, which PgBouncer refuses; and ended when it goes silent (endWhenSilent).
 */
export async function boundSession(client: Client, statementTimeoutMs: number, logger: Logger): Promise<void> {
  const ms = Math.round(statementTimeoutMs);
  await client.query(`SET statement_timeout = ${ms}; SET idle_in_transaction_session_timeout = ${ms}`);
  const silenceMs = silenceBoundMs(ms);
  endWhenSilent(client, silenceMs, (err) => logger.warn({ err, silenceMs }, 'a Postgres connection did not answer; ending it'));
}

/**
 * A knex pool on the primary. Every read that decides anything goes through it, inside the
 * conditional statement that acts on it: there is deliberately no read-replica option. With `bounds`
 * (the daemon), every pooled session runs under them; admin commands and migrations run unbounded.
 */
export function createDb(databaseUrl: string, poolMax = 10, bounds?: SessionBounds): Db {
  return knex({
    client: 'pg',
    connection: { connectionString: databaseUrl, application_name: 'order-callbacks', ...(bounds ? boundedConnection() : {}) },
    pool: {
      min: 0,
      max: poolMax,
      ...(bounds
        ? {
            afterCreate: (client: Client, done: (err: Error | null, client: Client) => void) => {
              boundSession(client, bounds.statementTimeoutMs, bounds.logger).then(
                () => done(null, client),
                (err: Error) => done(err, client),
              );
            },
          }
        : {}),
    },
    acquireConnectionTimeout: 10_000,
  });
}
