import { webhookSecret } from '../config';
import type { Db } from '../db/connection';
import { insertPartnerSecret, listPartnerSecrets, retirePartnerSecrets } from '../db/partners';
import { generateSecret } from '../delivery/sign';
import { UsageError } from '../errors/usage-error';
import { UserError } from '../errors/user-error';

/** A host as callback_host() stores it: lower-case, no scheme, port or path. */
export function normalizeHost(value: string): string {
  const host = value.trim().toLowerCase();
  if (!/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)$/.test(host))
    throw new UsageError(`--host: ${JSON.stringify(value)} is not a host name (no scheme, port or path)`);
  return host;
}

/**
 * Adds a secret for a host (given, or generated). The host's other active secrets stay active, so
 * this is also how a rotation starts: callbacks carry a signature for each until the old is retired.
 * Returns the secret: the only time it is shown.
 */
export async function addSecret(db: Db, hostInput: string, given?: string): Promise<{ id: string; host: string; secret: string }> {
  const host = normalizeHost(hostInput);
  checkGivenSecret(given);
  const secret = given ?? generateSecret();
  return { id: await insertPartnerSecret(db, host, secret), host, secret };
}

/** Which secrets `retire` means: --id N, or --all-but-newest; checked before anything is opened. */
export function parseRetireWhich(which: { id?: string; allButNewest?: boolean }): { id: string } | 'all-but-newest' {
  if (which.id !== undefined && !/^\d+$/.test(which.id))
    throw new UsageError(`--id: expected a secret id; got ${JSON.stringify(which.id)}`);
  if ((which.id === undefined) === !which.allButNewest) throw new UsageError('say which: --id N, or --all-but-newest');
  return which.id === undefined ? 'all-but-newest' : { id: which.id };
}

/** A secret given with --secret is in the format partners verify with; checked before anything is opened. */
export function checkGivenSecret(given: string | undefined): void {
  if (given !== undefined && !webhookSecret.safeParse(given).success) {
    throw new UsageError('--secret: must be whsec_ followed by base64 of at least 16 bytes');
  }
}

export async function retireSecret(db: Db, hostInput: string, whichInput: { id?: string; allButNewest?: boolean }): Promise<number> {
  const host = normalizeHost(hostInput);
  const which = parseRetireWhich(whichInput);
  const retired = await retirePartnerSecrets(db, host, which);
  if (which !== 'all-but-newest' && retired === 0) throw new UserError(`no active secret ${which.id} for ${host}`);
  return retired;
}

/** A host's secrets, or every host's: ids and dates, never the secrets. */
export async function listSecrets(db: Db, hostInput?: string): Promise<SecretRow[]> {
  const rows = await listPartnerSecrets(db, hostInput === undefined ? undefined : normalizeHost(hostInput));
  return rows.map((r) => ({
    id: String(r.id),
    host: r.host,
    createdAt: r.created_at.toISOString(),
    retiredAt: r.retired_at?.toISOString() ?? null,
    active: r.retired_at === null,
  }));
}

export interface SecretRow {
  id: string;
  host: string;
  createdAt: string;
  retiredAt: string | null;
  active: boolean;
}

export function formatSecrets(rows: SecretRow[]): string {
  if (rows.length === 0) return 'no partner secrets: every host is signed with CALLBACK_SECRET';
  return rows
    .map((r) => `${r.id.padStart(5)}  ${r.host}  created ${r.createdAt}  ${r.retiredAt ? `retired ${r.retiredAt}` : 'ACTIVE'}`)
    .join('\n');
}
