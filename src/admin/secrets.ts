import { webhookSecret } from '../config';
import type { Db } from '../db/connection';
import { insertPartnerSecret, listPartnerSecrets, retirePartnerSecrets } from '../db/partner-secrets';
import { generateSecret } from '../delivery/sign';
import { UserError } from '../errors/user-error';

/** A host as callback_host() stores it: lower-case, no scheme, port or path. */
export function normalizeHost(value: string): string {
  const host = value.trim().toLowerCase();
  if (!/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)$/.test(host)) throw new UserError(`--host: ${JSON.stringify(value)} is not a host name (no scheme, port or path)`);
  return host;
}

/**
 * Adds a secret for a host (given, or generated). The host's other active secrets stay active, so
 * this is also how a rotation starts: callbacks carry a signature for each until the old is retired.
 * Returns the secret: the only time it is shown.
 */
export async function addSecret(db: Db, hostInput: string, given?: string): Promise<{ id: string; host: string; secret: string }> {
  const host = normalizeHost(hostInput);
  if (given !== undefined && !webhookSecret.safeParse(given).success) {
    throw new UserError('--secret: must be whsec_ followed by base64 of at least 16 bytes');
  }
  const secret = given ?? generateSecret();
  return { id: await insertPartnerSecret(db, host, secret), host, secret };
}

export async function retireSecret(db: Db, hostInput: string, which: { id?: string; allButNewest?: boolean }): Promise<number> {
  const host = normalizeHost(hostInput);
  if (which.id !== undefined && !/^\d+$/.test(which.id)) throw new UserError(`--id: expected a secret id; got ${JSON.stringify(which.id)}`);
  if ((which.id === undefined) === !which.allButNewest) throw new UserError('say which: --id N, or --all-but-newest');
  const retired = await retirePartnerSecrets(db, host, which.id ? { id: which.id } : 'all-but-newest');
  if (which.id && retired === 0) throw new UserError(`no active secret ${which.id} for ${host}`);
  return retired;
}

export async function formatSecretList(db: Db, hostInput?: string): Promise<string> {
  const rows = await listPartnerSecrets(db, hostInput === undefined ? undefined : normalizeHost(hostInput));
  if (rows.length === 0) return 'no partner secrets: every host is signed with CALLBACK_SECRET';
  return rows
    .map((r) => `${String(r.id).padStart(5)}  ${r.host}  created ${r.created_at.toISOString()}  ${r.retired_at ? `retired ${r.retired_at.toISOString()}` : 'ACTIVE'}`)
    .join('\n');
}
