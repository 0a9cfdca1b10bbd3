import type { Db } from './connection';

export interface RequeueAuditRow {
  actor: string;
  /** The selector as given, with the statuses it moves: stored as jsonb. */
  selector: Record<string, unknown>;
  matched: number;
  dryRun: boolean;
  resendDelivered: boolean;
}

/**
 * Writes a run's audit row before it changes anything, with changed = 0; each batch then adds its
 * count in its own transaction (recordRequeueProgress). So a run that dies halfway still leaves a row
 * that says who started it and exactly how many orders it had moved. Returns the row's id.
 */
export async function insertRequeueAudit(db: Db, audit: RequeueAuditRow): Promise<string> {
  const result = await db.raw<{ rows: { id: string }[] }>(
    `INSERT INTO requeue_audit (actor, selector, matched, changed, dry_run, resend_delivered)
     VALUES (?, ?::jsonb, ?, 0, ?, ?) RETURNING id`,
    [audit.actor, JSON.stringify(audit.selector), audit.matched, audit.dryRun, audit.resendDelivered],
  );
  return result.rows[0].id;
}
