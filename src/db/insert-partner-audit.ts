import type { Db } from './connection';

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
