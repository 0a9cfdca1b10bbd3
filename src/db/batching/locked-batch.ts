/**
 * The opening of every statement that changes a batch of orders, each in its own way: `input` is the
 * batch (one jsonb array, read by jsonb_to_recordset with `columns`, which must include `id bigint`),
 * `locked` takes the row locks in id order, so two batches that share orders cannot deadlock.
 *
 * SKIP LOCKED: a row that another transaction holds (another batch, the order system, an admin) is
 * left out of this statement rather than waited for, so one held row never stalls the hundreds of
 * other orders that share its batch. Each statement decides what a skipped row means: a claim skips
 * the order; a finish asks again shortly (see `busy`).
 *
 * Statements then change `orders o` WHERE o.id = ANY(ARRAY(SELECT id FROM locked)): that form keeps
 * every lookup on the primary key, where a join let the planner scan the table.
 * Binds one parameter: JSON.stringify of the batch.
 */
export function lockedBatch(columns: string): string {
  return `
    input AS (SELECT * FROM jsonb_to_recordset(?::jsonb) AS t(${columns})),
    locked AS (SELECT o.id FROM orders o WHERE o.id = ANY(ARRAY(SELECT id FROM input)) ORDER BY o.id FOR UPDATE SKIP LOCKED)`;
}

/**
 * "Still at 5", for the statements that find their orders by id (`locked`): written so that no partial
 * index on status = 5 can serve it. Given `o.status = 5`, the planner would scan such an index whole
 * (orders_ready_since_idx) instead of looking the ids up by primary key whenever its statistics saw few
 * orders at 5, and that scan reads every dead entry the index has gathered since the last vacuum: a
 * drain ran ~25 % slower, and with prepared (generic) plans — which the claim and record statements now
 * use (PreparedStatement) — pickup at 2,000 orders/s built up to seconds
 * (docs/decisions/0005-still-ready-by-primary-key.md). Used as
 * `AND ${STILL_READY}`; the producer's lease keeps `status = 5`, it wants its index.
 */
export const STILL_READY = '(o.status + 0) = 5';

/**
 * The `ord` of each input row whose order exists but was skipped because another transaction held it:
 * nothing was decided about it, and it must be asked again. Needs an `ord int` column in the input.
 */
export const BUSY_ROWS = `
    busy AS (SELECT i.ord FROM input i
              WHERE i.id NOT IN (SELECT id FROM locked) AND EXISTS (SELECT 1 FROM orders o WHERE o.id = i.id))`;

/** Answered for a row another transaction held: ask again shortly; nothing was changed or logged. */
export const ROW_BUSY = Symbol('order row held by another transaction');
export type OrBusy<T> = T | typeof ROW_BUSY;
