/**
 * How long a graceful stop takes at most, in parts, so that the daemon and PM2 (ecosystem.config.js)
 * agree: PM2's SIGKILL must never land while callbacks' hand-backs are being written.
 *
 * A stop: fetching stops and the grace period (SHUTDOWN_GRACE_MS) begins; the producer stops meanwhile;
 * callbacks still in flight when the grace ends are aborted and their orders handed back (a write each,
 * batched, that may wait up to HAND_BACK_MS for rows another transaction holds); then the connections
 * close, each within RELEASE_MS.
 */
export const HAND_BACK_MS = 10_000;
const RELEASE_MS = 5_000;

/** The longest a graceful stop may take; past it the daemon exits anyway (exit code 1). */
export function shutdownDeadlineMs(shutdownGraceMs: number): number {
  return shutdownGraceMs + HAND_BACK_MS + RELEASE_MS;
}

/** What a supervisor (PM2's kill_timeout) should give the daemon before SIGKILL: a little more. */
export function killTimeoutMs(shutdownGraceMs: number): number {
  return shutdownDeadlineMs(shutdownGraceMs) + 5_000;
}
