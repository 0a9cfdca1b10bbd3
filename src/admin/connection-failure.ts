import { ReplyError } from 'ioredis';
import { KnexTimeoutError } from 'knex';

/**
 * SQLSTATEs that mean the session, not the statement, failed: connection exceptions (class 08), the
 * server shutting down, crashed or starting (57P01-57P03), no connection slot left (53300).
 */
const SESSION_SQLSTATES = /^(08...|57P0[123]|53300)$/;

/**
 * The drivers' errors for a connection that failed or went quiet carry no code of their own (pg's
 * "Connection terminated unexpectedly", "Query read timeout"; ioredis' "Connection is closed",
 * "Command timed out", the refused write of an offline connection): their text is all there is.
 */
const DRIVER_CONNECTION_MESSAGES =
  /Connection terminated|timeout expired|Query read timeout|Connection is closed|Command timed out|Stream isn't writeable/;

/**
 * Whether an error from Postgres or Redis means the service could not be used (no connection, a
 * connection lost, no answer) rather than an answer it gave (a constraint, a syntax error, WRONGTYPE).
 */
export function isConnectionFailure(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true; // a socket error: ECONNREFUSED, ECONNRESET, ETIMEDOUT...
  if (typeof code === 'string' && code.length === 5) return SESSION_SQLSTATES.test(code);
  if (err instanceof KnexTimeoutError) return true; // no pooled connection could be made in time
  if (err instanceof AggregateError) return err.errors.some((e) => e instanceof Error && isConnectionFailure(e));
  return DRIVER_CONNECTION_MESSAGES.test(err.message);
}

/**
 * Whether the service answered, refusing a session: a SQLSTATE at connect (a wrong password, 28P01; no
 * such database, 3D000) or a Redis error reply to AUTH or the first command (WRONGPASS, NOAUTH).
 */
export function isSessionRefusal(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) || err instanceof ReplyError;
}
