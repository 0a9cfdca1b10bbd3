import { BUSY_ROWS, lockedBatch, type OrBusy, ROW_BUSY, STILL_READY } from './batching/locked-batch';
import type { ClaimedOrder } from './claim-order';
import type { Db } from './connection';
import { OrderStatus } from './order-status';
import { PreparedStatement } from './prepared-statement';

/** What one attempt ends as, and what the order becomes. */
export type AttemptOutcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; error: string; delayMs: number }
  | { kind: 'failed'; error: string }
  /**
   * Not an attempt: aborted by shutdown (handed back at once), or never written because the claim had
   * run out (handed back for `delayMs`, so that it does not come straight back).
   */
  | { kind: 'released'; error: string; delayMs?: number };

export interface AttemptRecord {
  order: ClaimedOrder;
  outcome: AttemptOutcome;
  startedAt: Date;
  durationMs: number;
  httpStatus?: number;
  worker: string;
}

/** One attempt as the statement reads it (jsonb_to_recordset). */
function asInputRow(record: AttemptRecord, ord: number) {
  const { order, outcome } = record;
  const error = outcome.kind === 'delivered' ? null : outcome.error;
  return {
    ord,
    id: order.id,
    version: order.version,
    token: order.token,
    status: outcome.kind === 'delivered' ? OrderStatus.delivered : outcome.kind === 'failed' ? OrderStatus.failed : OrderStatus.ready,
    counted: outcome.kind === 'released' ? 0 : 1,
    kind: outcome.kind,
    error,
    // Whole milliseconds: a fraction in one record would fail the statement, and every record batched with it.
    delay_ms: outcome.kind === 'retry' || outcome.kind === 'released' ? Math.max(0, Math.round(outcome.delayMs ?? 0)) : 0,
    attempt: order.attempts + 1,
    started_at: record.startedAt.toISOString(),
    duration_ms: Math.round(record.durationMs),
    http_status: record.httpStatus ?? null,
    worker: record.worker,
  };
}

/**
 * The record statement, with knex's `?` placeholder for the batch (jsonb of `asInputRow` rows).
 * Exported for the test that checks how Postgres plans it.
 */
export const RECORD_ATTEMPTS_SQL = `
  WITH ${lockedBatch(
    `ord int, id bigint, version int, token uuid, status smallint, counted int, kind text, error text,
     delay_ms bigint, attempt int, started_at timestamptz, duration_ms int, http_status int, worker text`,
  )},
  ${BUSY_ROWS},
  applied AS (
    UPDATE orders o
       SET status = i.status,
           attempts = o.attempts + i.counted,
           last_error = CASE i.kind WHEN 'delivered' THEN NULL WHEN 'released' THEN o.last_error ELSE i.error END,
           delivered_at = CASE WHEN i.status = ${OrderStatus.delivered} THEN now() ELSE o.delivered_at END,
           next_attempt_at = CASE WHEN i.kind = 'retry' OR (i.kind = 'released' AND i.delay_ms > 0)
                                  THEN now() + i.delay_ms * interval '1 millisecond'
                                  ELSE o.next_attempt_at END,
           claim_token = NULL,
           claim_until = NULL,
           lease_until = NULL
      -- One claim recorded twice in a batch: the first record counts, the second is superseded.
      FROM (SELECT DISTINCT ON (id, token) * FROM input ORDER BY id, token, ord) i
     WHERE o.id = ANY(ARRAY(SELECT id FROM locked)) AND o.id = i.id
       AND ${STILL_READY} AND o.version = i.version AND o.claim_token = i.token
    RETURNING i.ord
  ),
  logged AS (
    INSERT INTO delivery_log (order_id, attempt, started_at, duration_ms, http_status, error, outcome, worker, superseded)
    SELECT id, attempt, started_at, duration_ms, http_status, error, kind, worker, ord NOT IN (SELECT ord FROM applied)
      FROM input
     WHERE ord NOT IN (SELECT ord FROM busy)
     ORDER BY ord
  )
  SELECT ord, true AS applied FROM applied
  UNION ALL
  SELECT ord, false FROM busy
  `;

const recordStatement = new PreparedStatement<{ ord: number; applied: boolean }>('order_callbacks_record_attempts', RECORD_ATTEMPTS_SQL);

/**
 * Applies attempts' outcomes to their orders and appends one delivery_log row each, in one statement.
 * Each update is fenced: it applies only while the order is still at 5, at the version read by the
 * claim, and still carries that claim's token. Answers, per record and in order, whether it applied;
 * false means superseded (another worker took over after the claim expired, or the order changed, or
 * the same claim was already recorded earlier in the batch), and the log row says so too. ROW_BUSY:
 * another transaction held the order, so nothing was written for it; record it again shortly.
 */
export async function recordAttempts(db: Db, records: AttemptRecord[]): Promise<OrBusy<boolean>[]> {
  if (records.length === 0) return [];
  const result = await recordStatement.run(db, [JSON.stringify(records.map(asInputRow))]);
  const answered = new Map(result.rows.map((row) => [row.ord, row.applied]));
  return records.map((_, ord) => {
    const applied = answered.get(ord);
    return applied === undefined ? false : applied ? true : ROW_BUSY;
  });
}
