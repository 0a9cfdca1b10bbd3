import os from 'node:os';

import { UsageError } from '../errors/usage-error';

/**
 * Who runs a command, for the audit: --actor when given, else the OS user. os.userInfo() throws for a
 * uid with no passwd entry (containers often run as an arbitrary uid), which must not stop the command.
 */
export function resolveActor(given: string | undefined): string {
  if (given !== undefined) {
    const actor = given.trim();
    if (!actor) throw new UsageError('--actor: say who is doing this (or leave it out for the OS user)');
    if (actor.length > 200) throw new UsageError('--actor: at most 200 characters');
    return actor;
  }
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER || process.env.LOGNAME || `uid ${process.getuid?.() ?? 'unknown'}`;
  }
}
