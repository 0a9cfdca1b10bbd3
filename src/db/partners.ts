/** The partner tables: signing secrets (partner_secrets) and who paused or resumed whom (partner_audit). */
import type { Db } from './connection';

export interface PartnerSecret {
  id: string;
  host: string;
  secret: string;
  created_at: Date;
  retired_at: Date | null;
}

/** Every active secret, newest first per host: what the signer caches. Cancelled after `timeoutMs`. */
export async function listActiveSecrets(db: Db, timeoutMs = 5000): Promise<Pick<PartnerSecret, 'host' | 'secret'>[]> {
  return db('partner_secrets')
    .whereNull('retired_at')
    .orderBy([{ column: 'host' }, { column: 'id', order: 'desc' }])
    .select('host', 'secret')
    .timeout(timeoutMs, { cancel: true });
}

/** For people: never the secret itself. */
export async function listPartnerSecrets(db: Db, host?: string): Promise<Omit<PartnerSecret, 'secret'>[]> {
  const query = db('partner_secrets')
    .orderBy([{ column: 'host' }, { column: 'id' }])
    .select('id', 'host', 'created_at', 'retired_at');
  return host ? query.where({ host }) : query;
}

export async function insertPartnerSecret(db: Db, host: string, secret: string): Promise<string> {
  const [row] = await db('partner_secrets').insert({ host, secret }).returning('id');
  return String(row.id);
}

/** Retires the named secret of a host, or all but its newest; returns how many were retired. */
export async function retirePartnerSecrets(db: Db, host: string, which: { id: string } | 'all-but-newest'): Promise<number> {
  const query = db('partner_secrets').where({ host }).whereNull('retired_at');
  if (which === 'all-but-newest') {
    query.whereNot('id', db('partner_secrets').where({ host }).whereNull('retired_at').max('id'));
  } else {
    query.where({ id: which.id });
  }
  return query.update({ retired_at: db.fn.now() });
}

export interface PartnerAuditRow {
  actor: string;
  action: 'pause' | 'resume';
  origin: string;
  reason?: string;
  /** The end a pause was given; undefined: until resumed. */
  pausedUntil?: Date;
  stateBefore: string;
  stateAfter: string;
}

/** One row per partner paused or resumed by hand: who, when, which, why, and its state before and after. */
export async function insertPartnerAudit(db: Db, row: PartnerAuditRow): Promise<void> {
  await db.raw(
    `INSERT INTO partner_audit (actor, action, origin, reason, paused_until, state_before, state_after) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    [row.actor, row.action, row.origin, row.reason ?? null, row.pausedUntil ?? null, row.stateBefore, row.stateAfter],
  );
}
