/**
 * The opening of every statement that changes a batch of orders, each in its own way: `input` is the
 * batch (one jsonb array, read by jsonb_to_recordset with `columns`, which must include `id bigint`),
 * `locked` takes the row locks in id order, so two batches that share orders wait for each other
 * instead of deadlocking. Statements then change `orders o` WHERE o.id = ANY(ARRAY(SELECT id FROM
 * locked)): that form keeps every lookup on the primary key, where a join let the planner scan the table.
 * Binds one parameter: JSON.stringify of the batch.
 */
export function lockedBatch(columns: string): string {
  return `
    input AS (SELECT * FROM jsonb_to_recordset(?::jsonb) AS t(${columns})),
    locked AS (SELECT o.id FROM orders o WHERE o.id = ANY(ARRAY(SELECT id FROM input)) ORDER BY o.id FOR UPDATE)`;
}
