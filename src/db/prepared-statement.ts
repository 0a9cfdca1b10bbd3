import type { Db } from './connection';

/** knex's `?` placeholders as Postgres' own `$1, $2, …`, which named statements (and PREPARE) need. */
export function positionalParameters(sql: string): string {
  let position = 0;
  return sql.replace(/\?/g, () => `$${++position}`);
}

/**
 * A statement that each pooled connection parses and plans once, then runs by name: the producer's
 * lease and the worker's batched claim and record. Parsing and planning them cost more than running
 * them when batches are small, as they are while orders trickle in: a claim and record pair for one
 * order took ~2.0 ms of Postgres CPU planned per call and ~0.9 ms prepared
 * (docs/decisions/0004-prepared-hot-path-statements.md). Postgres
 * re-plans by itself after DDL or ANALYZE; that the generic plan keeps to the right index is tested.
 *
 * Written with knex's `?` placeholders, like every other statement here, so there must be no other `?`
 * in the text (no jsonb `?` operator). The daemon needs session pooling anyway (the producer's LISTEN);
 * behind a transaction-mode pooler, named statements alone would need PgBouncer 1.21 or later with
 * max_prepared_statements set.
 */
export class PreparedStatement<Row> {
  private readonly text: string;

  constructor(
    private readonly name: string,
    sql: string,
  ) {
    this.text = positionalParameters(sql);
  }

  async run(db: Db, bindings: readonly unknown[]): Promise<{ rows: Row[] }> {
    // knex has no named statements, so this borrows one of its pooled pg clients for the call.
    const connection = await db.client.acquireConnection();
    try {
      return await connection.query({ name: this.name, text: this.text, values: bindings });
    } finally {
      await db.client.releaseConnection(connection);
    }
  }
}
