import type { Knex } from 'knex';
import type { Db } from './connection';

/** The given order ids that name no order, in the order given: reported by requeue, never guessed at. */
export async function findUnknownIds(db: Db, ids: readonly string[]): Promise<string[]> {
  const result = await db.raw<{ rows: { id: string }[] }>(
    `SELECT given.id FROM unnest(?::bigint[]) WITH ORDINALITY AS given(id, n)
      WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = given.id)
      ORDER BY given.n`,
    [ids as unknown as Knex.Value],
  );
  return result.rows.map((r) => r.id);
}
