import type { Db } from './connection';
import type { ClaimedOrder } from './claim-order';

/** What one attempt ends as, and what the order becomes. */
export type AttemptOutcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; error: string; delayMs: number }
  | { kind: 'failed'; error: string }
  /** Aborted by shutdown: handed back at once, not counted as an attempt. */
  | { kind: 'released'; error: string };

export interface AttemptRecord {
  order: ClaimedOrder;
  outcome: AttemptOutcome;
  startedAt: Date;
  durationMs: number;
  httpStatus?: number;
  worker: string;
}

/**
 * Applies an attempt's outcome to the order and appends its delivery_log row, in one statement.
 * The update is fenced: it only applies while the order is still at 5, at the version read by the
 * claim, and still carries this claim's token. Returns false when it did not apply (superseded: another
 * worker took over after our claim expired, or the order changed) — the log row says so too.
 */
export async function recordAttempt(db: Db, record: AttemptRecord): Promise<boolean> {
  const { order, outcome } = record;
  const status = outcome.kind === 'delivered' ? 6 : outcome.kind === 'failed' ? 7 : 5;
  const counted = outcome.kind === 'released' ? 0 : 1;
  const error = outcome.kind === 'delivered' ? null : outcome.error;
  const delayMs = outcome.kind === 'retry' ? outcome.delayMs : 0;
  const result = await db.raw<{ rows: { applied: boolean }[] }>(
    `
    WITH applied AS (
      UPDATE orders
         SET status = ?::smallint,
             attempts = attempts + ?::int,
             last_error = CASE ?::text WHEN 'delivered' THEN NULL WHEN 'released' THEN last_error ELSE ?::text END,
             delivered_at = CASE WHEN ?::smallint = 6 THEN now() ELSE delivered_at END,
             next_attempt_at = CASE WHEN ?::text = 'retry' THEN now() + (?::bigint * interval '1 millisecond')
                                    ELSE next_attempt_at END,
             claim_token = NULL,
             lease_until = NULL
       WHERE id = ? AND status = 5 AND version = ? AND claim_token = ?::uuid
      RETURNING id
    )
    INSERT INTO delivery_log (order_id, attempt, started_at, duration_ms, http_status, error, outcome, worker, superseded)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, NOT EXISTS (SELECT 1 FROM applied))
    RETURNING NOT superseded AS applied
    `,
    [
      status,
      counted,
      outcome.kind,
      error,
      status,
      outcome.kind,
      delayMs,
      order.id,
      order.version,
      order.token,
      order.id,
      order.attempts + 1,
      record.startedAt,
      Math.round(record.durationMs),
      record.httpStatus ?? null,
      error,
      outcome.kind,
      record.worker,
    ],
  );
  return result.rows[0].applied;
}
