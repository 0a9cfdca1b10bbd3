/**
 * SQLSTATE classes of a failure that need not happen again: a lost connection (08), a rolled-back
 * transaction (40: deadlock, serialization), too few resources (53: too many connections) and an
 * operator's intervention (57: the server shutting down, our session terminated, a statement timeout).
 */
const PASSING_CLASSES = new Set(['08', '40', '53', '57']);
/** lock_not_available: a lock timeout. */
const PASSING_CODES = new Set(['55P03']);

/**
 * Whether running a statement again may succeed. What Postgres raised about the statement itself (bad
 * data, a constraint, a mistake in the SQL) fails the same way every time, and a retried statement is
 * batched with other orders', which would fail with it again. Everything not raised by Postgres may
 * pass: a connection cut, a pool that had no connection to give, a network error.
 */
export function mayPassOnRetry(err: unknown): boolean {
  const { code, severity } = (err ?? {}) as { code?: unknown; severity?: unknown };
  if (typeof code !== 'string' || typeof severity !== 'string') return true;
  return PASSING_CLASSES.has(code.slice(0, 2)) || PASSING_CODES.has(code);
}
