import { readdirSync } from 'node:fs';
import path from 'node:path';

import { Client } from 'pg';

import { boundedConnection, createDb, type Db } from './connection';

const MIGRATIONS_DIR = path.join(__dirname, '..', '..', 'migrations');

/** Creates the database named in the URL when it does not exist yet (connecting to `postgres`). */
export async function ensureDatabase(databaseUrl: string, connectTimeoutMs?: number): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!name) throw new Error('DATABASE_URL: names no database');
  url.pathname = '/postgres';
  const admin = new Client({ connectionString: url.toString(), ...boundedConnection(connectTimeoutMs) });
  await admin.connect();
  try {
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    } catch (err) {
      // Two migrators racing: the other one created it first. Postgres says so as "already exists"
      // (42P04) or, when both got past its own check, as a unique violation on pg_database (23505).
      const code = (err as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw err;
    }
    return true;
  } finally {
    await admin.end();
  }
}

/**
 * Applies every pending knex migration; returns the names applied. Safe to run concurrently (every
 * replica may run it at start): knex's own lock table cannot protect the creation of its tables, so
 * migrators queue on a session advisory lock and each finds the work done by the one before it.
 *
 * Hence no migration may build an index CONCURRENTLY: that waits for every older snapshot in the
 * database, among them another replica's migrator waiting here for this lock, which waits for this
 * migration to end. Tried: it hangs until a statement timeout. A plain CREATE INDEX, as in migration
 * 005, blocks writes to its table while it builds instead.
 */
/** `connectTimeoutMs` bounds each connection it opens (the migrations themselves are not bounded). */
export async function migrateLatest(databaseUrl: string, connectTimeoutMs?: number): Promise<string[]> {
  await ensureDatabase(databaseUrl, connectTimeoutMs);
  const lock = new Client({
    connectionString: databaseUrl,
    application_name: 'order-callbacks-migrate',
    ...boundedConnection(connectTimeoutMs),
  });
  await lock.connect();
  const db = createDb(databaseUrl, 2);
  try {
    await lock.query("SELECT pg_advisory_lock(hashtextextended('order-callbacks:migrate', 0))");
    const [, applied] = (await db.migrate.latest({ directory: MIGRATIONS_DIR, loadExtensions: ['.js'] })) as [number, string[]];
    return applied;
  } finally {
    await db.destroy();
    // Ending the session releases the lock, also when the migration failed.
    await lock.end();
  }
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

/**
 * The migrations applied to the database and those still to apply, read without writing anything
 * (knex's own list() would create its tables first).
 */
export async function migrationStatus(db: Db): Promise<MigrationStatus> {
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((name) => name.endsWith('.js'))
    .sort();
  const { rows } = await db.raw<{ rows: { exists: boolean }[] }>("SELECT to_regclass('knex_migrations') IS NOT NULL AS exists");
  const applied: string[] = rows[0].exists
    ? (await db('knex_migrations').orderBy('id').select('name')).map((r: { name: string }) => r.name)
    : [];
  return { applied, pending: files.filter((name) => !applied.includes(name)) };
}
