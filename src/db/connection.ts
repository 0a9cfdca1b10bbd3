import knex, { type Knex } from 'knex';
import { type Client, type ClientConfig, types } from 'pg';

import type { Logger } from '../observability/logger';
import { silenceBoundMs, SilenceWatch } from './end-silent-connections';

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
  /** Ends the sessions that go silent; shared by every session of the process, for /readyz. */
  silence: SilenceWatch;
}

/** The bounds for a daemon: `logger` is told when a connection is ended for its silence. */
export function sessionBounds(statementTimeoutMs: number, logger: Logger): SessionBounds {
  const silenceMs = silenceBoundMs(statementTimeoutMs);
  // Overdue a second after the statement timeout: a statement cancelled by it has its answer on the
  // way by then, and does not show as overdue while it travels.
  const silence = new SilenceWatch(statementTimeoutMs + 1000, silenceMs, (err) =>
    logger.warn({ err, silenceMs }, 'a Postgres connection did not answer; ending it'),
  );
  return { statementTimeoutMs, silence };
}

/** pg settings for a bounded session, on the client's side: a bound on connecting, and TCP keepalives. */
export function boundedConnection(
  connectTimeoutMs = CONNECT_TIMEOUT_MS,
): Pick<ClientConfig, 'connectionTimeoutMillis' | 'keepAlive' | 'keepAliveInitialDelayMillis'> {
  return {
    connectionTimeoutMillis: Math.max(1, Math.round(connectTimeoutMs)),
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
  };
}

/**
 * Bounds a new session: ended when it goes silent (SilenceWatch), watched from before its first
 * statement; statement and idle-transaction timeouts on the server, set with SET rather than as
 * startup parameters, which PgBouncer refuses.
 */
export async function boundSession(client: Client, bounds: SessionBounds): Promise<void> {
  bounds.silence.watch(client);
  const ms = Math.round(bounds.statementTimeoutMs);
  await client.query(`SET statement_timeout = ${ms}; SET idle_in_transaction_session_timeout = ${ms}`);
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
              // knex does not end a connection whose afterCreate failed: it would stay open, unpooled.
              boundSession(client, bounds).then(
                () => done(null, client),
                (err: Error) =>
                  void client
                    .end()
                    .catch(() => undefined)
                    .then(() => done(err, client)),
              );
            },
          }
        : {}),
    },
    acquireConnectionTimeout: 10_000,
  });
}
