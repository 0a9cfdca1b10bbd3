import knex, { type Knex } from 'knex';
import { types } from 'pg';

export type Db = Knex;

// timestamptz stays a Date, bigint (order ids) stays a string: JavaScript numbers cannot hold every
// bigint, and an order id is never used for arithmetic.
types.setTypeParser(types.builtins.INT8, (value: string) => value);

export interface DbOptions {
  /**
   * Most connections in the pool.
   * @defaultValue 10
   */
  poolMax?: number;
  /**
   * Whether PreparedStatement may name its statements, so each connection prepares them once; false
   * behind a pooler that hands a session's statements to other clients (DATABASE_PREPARED_STATEMENTS).
   * @defaultValue true
   */
  preparedStatements?: boolean;
}

/** Pools created with preparedStatements: false. */
const unnamedOnly = new WeakSet<Db>();

/**
 * A knex pool on the primary. Every read that decides anything goes through it, inside the
 * conditional statement that acts on it: there is deliberately no read-replica option.
 */
export function createDb(databaseUrl: string, options: DbOptions = {}): Db {
  const db = knex({
    client: 'pg',
    connection: { connectionString: databaseUrl, application_name: 'order-callbacks' },
    pool: { min: 0, max: options.poolMax ?? 10 },
    acquireConnectionTimeout: 10_000,
  });
  if (options.preparedStatements === false) unnamedOnly.add(db);
  return db;
}

/** Whether statements on this pool may be named (prepared once per connection). */
export function allowsPreparedStatements(db: Db): boolean {
  return !unnamedOnly.has(db);
}
