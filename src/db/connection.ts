import knex, { type Knex } from 'knex';
import { types } from 'pg';

export type Db = Knex;

// timestamptz stays a Date, bigint (order ids) stays a string: JavaScript numbers cannot hold every
// bigint, and an order id is never used for arithmetic.
types.setTypeParser(types.builtins.INT8, (value: string) => value);

/**
 * A knex pool on the primary. Every read that decides anything goes through it, inside the
 * conditional statement that acts on it: there is deliberately no read-replica option.
 */
export function createDb(databaseUrl: string, poolMax = 10): Db {
  return knex({
    client: 'pg',
    connection: { connectionString: databaseUrl, application_name: 'order-callbacks' },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 10_000,
  });
}
