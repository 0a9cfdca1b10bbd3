import type { Config } from '../config';
import { ADMIN_CLOSE_TIMEOUT_MS, AdminServices } from './admin-services';
import { Deadline } from './deadline';
import { ExitCode } from './exit-codes';

/** An admin command answers, and exits, within this long of the process starting, whatever is down. */
export const ADMIN_ANSWER_MS = 10_000;

/**
 * Runs an admin command against Postgres and Redis opened on first use, all within one deadline; each
 * service it found unreachable gets a line on stderr, and the exit code is 3.
 */
export async function runAdminCommand(
  config: Readonly<Config>,
  run: (services: AdminServices, config: Readonly<Config>) => Promise<void>,
  options: { statementTimeoutMs?: number } = {},
): Promise<void> {
  // Counted from the process' start (loading the modules takes a while on a busy host), less the time
  // kept for closing the connections.
  const deadlineMs = ADMIN_ANSWER_MS - ADMIN_CLOSE_TIMEOUT_MS - process.uptime() * 1000;
  const services = new AdminServices(config, new Deadline(deadlineMs), options.statementTimeoutMs);
  try {
    await run(services, config);
  } finally {
    for (const u of services.unreachable) console.error(`order-callbacks: ${u.service} unreachable at ${u.address} (${u.error})`);
    if (services.unreachable.length) process.exitCode = ExitCode.unreachable;
    await services.close();
  }
}
