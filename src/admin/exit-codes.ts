import { CommanderError } from 'commander';

import { ConfigError } from '../errors/config-error';
import { ServiceUnreachableError } from '../errors/service-unreachable-error';
import { UsageError } from '../errors/usage-error';

/** What an admin command's exit code tells a script. */
export const ExitCode = {
  /** Done, and everything asked for was read. */
  ok: 0,
  /** The command ran and failed: no such order, no such secret, an error Postgres or Redis answered with. */
  failed: 1,
  /** Called wrongly: an unknown command or option, a bad value, bad configuration. Retrying will not help. */
  usage: 2,
  /** Postgres or Redis could not be used (stats and inspect still print what the other had). Worth retrying. */
  unreachable: 3,
} as const;

export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  if (err instanceof UsageError || err instanceof ConfigError) return ExitCode.usage;
  if (err instanceof ServiceUnreachableError) return ExitCode.unreachable;
  return ExitCode.failed;
}

export const EXIT_CODES_HELP = `
Exit codes:
  0  done
  1  failed (no such order or secret, or an error Postgres or Redis answered with)
  2  usage: an unknown command or option, a bad value, or bad configuration
  3  Postgres or Redis unreachable (stats and inspect still print what the other had)
Admin commands answer within 10 s whatever is down. --debug prints a failure's stack trace.`;
