import { randomBytes } from 'node:crypto';

import { Client } from 'pg';

import { createDb, type Db } from '../../src/db/connection';
import { migrateLatest } from '../../src/db/migrate';

export const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  db: Db;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one test file; drop() removes it, closing whatever still uses it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `oc_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  await migrateLatest(url.toString());
  const db = createDb(url.toString(), 5);
  return {
    url: url.toString(),
    name,
    db,
    drop: async () => {
      await db.destroy();
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

export async function adminQuery(sql: string, params: unknown[] = []): Promise<void> {
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(sql, params);
  } finally {
    await admin.end();
  }
}

/**
 * Whether `client`'s session can take the advisory lock named `key` right now, as another replica's
 * producer would; a lock it gets is let go at once.
 */
export async function advisoryLockFree(client: Client, key: string): Promise<boolean> {
  const { rows } = await client.query('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [key]);
  if (rows[0].locked) await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
  return rows[0].locked === true;
}

/** Kills every session on the database except ours: what a Postgres restart or failover does to a pool. */
export async function terminateConnections(databaseName: string): Promise<void> {
  await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [databaseName]);
}

export interface OrderRow {
  id: string;
  status: number;
  version: number;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date;
  delivered_at: Date | null;
  lease_until: Date | null;
  claim_token: string | null;
  claim_until: Date | null;
}

export async function insertOrders(
  db: Db,
  ids: number[],
  callbackUrl: string | null,
  payload: unknown = { item: 'book' },
  status = 5,
): Promise<void> {
  for (let i = 0; i < ids.length; i += 1000) {
    await db('orders').insert(
      ids.slice(i, i + 1000).map((id) => ({
        id,
        status,
        callback_url: callbackUrl,
        payload: JSON.stringify(payload),
      })),
    );
  }
}

export async function getOrder(db: Db, id: number | string): Promise<OrderRow> {
  return db('orders').where({ id }).first();
}

export async function statusCounts(db: Db): Promise<Record<number, number>> {
  const rows: { status: number; n: string }[] = await db('orders').select('status').count('* as n').groupBy('status');
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

/** How many orders have made each number of attempts: { attempts: orders }. */
export async function attemptsHistogram(db: Db): Promise<Record<number, number>> {
  const rows = await db('orders').select('attempts').count('* as n').groupBy('attempts');
  return Object.fromEntries(rows.map((row) => [Number(row.attempts), Number(row.n)]));
}
