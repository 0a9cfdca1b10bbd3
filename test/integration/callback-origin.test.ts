import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { createTestDatabase, type TestDatabase } from '../helpers/database';

// callback_origin() as migration 011 has it (PL/pgSQL) must give what migration 007's SQL version gave,
// for every URL: the entries of orders_ready_origin_idx were made by that version and are not rebuilt.
const { SQL_VERSION } = require('../../migrations/011_callback_origin_plpgsql') as { SQL_VERSION: string };

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  await database.db.raw(SQL_VERSION.replace('FUNCTION callback_origin(', 'FUNCTION callback_origin_007('));
});

afterAll(async () => {
  await database.drop();
});

/** Every combination of the parts a callback URL is made of, well and badly spelt. */
function urls(): string[] {
  const out: string[] = [];
  for (const lead of ['', ' '])
    for (const scheme of ['http://', 'HTTPS://', 'https://', 'ftp://', 'http:/', ''])
      for (const userinfo of ['', 'user@', 'u:p@', '@'])
        for (const host of ['Ex.COM', 'hooks.partner.example', '127.0.0.1', '[::1]', '[FE80::1%25eth0]', '', 'a_b'])
          for (const port of ['', ':', ':80', ':443', ':0080', ':00443', ':8443', ':65535', ':123456', ':x'])
            for (const tail of ['', '/', '/cb?x=1', '?q', '#f', '\\x', ' ', '/a:b@c'])
              out.push(`${lead}${scheme}${userinfo}${host}${port}${tail}`);
  return [...out, 'not a url', 'http://x'.padEnd(5000, 'y')];
}

it("keeps 007's version, word for word, to put back when undone", () => {
  const literal = (file: string, name: string) =>
    new RegExp(`const ${name} = \`([^\`]*)\`;`).exec(readFileSync(join(__dirname, '..', '..', 'migrations', file), 'utf8'))?.[1];
  const of007 = literal('007_partners.js', 'CALLBACK_ORIGIN');
  expect(of007).toMatch(/LANGUAGE sql/);
  expect(literal('011_callback_origin_plpgsql.js', 'SQL_VERSION')).toBe(of007);
});

it("gives the same origin as migration 007's version for every URL", async () => {
  const all = urls();
  const { rows } = await database.db.raw<{ rows: { url: string; now: string | null; before: string | null }[] }>(
    `SELECT u AS url, callback_origin(u) AS now, callback_origin_007(u) AS before
       FROM unnest(?::text[]) u WHERE callback_origin(u) IS DISTINCT FROM callback_origin_007(u)`,
    [all],
  );
  expect(rows).toEqual([]);
  const { rows: nulls } = await database.db.raw<{ rows: { same: boolean }[] }>(
    'SELECT callback_origin(NULL) IS NOT DISTINCT FROM callback_origin_007(NULL) AS same',
  );
  expect(nulls[0].same).toBe(true);
  // Not a check of nothing: most of these have an origin, and some have none.
  const { rows: counted } = await database.db.raw<{ rows: { origins: string; none: string }[] }>(
    'SELECT count(callback_origin(u)) AS origins, count(*) - count(callback_origin(u)) AS none FROM unnest(?::text[]) u',
    [all],
  );
  expect(Number(counted[0].origins)).toBeGreaterThan(1000);
  expect(Number(counted[0].none)).toBeGreaterThan(1000);
});

it('is the PL/pgSQL version, and orders_ready_origin_idx still serves lookups by origin', async () => {
  const { rows } = await database.db.raw<{ rows: { lang: string }[] }>(
    "SELECT l.lanname AS lang FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = 'callback_origin'",
  );
  expect(rows).toEqual([{ lang: 'plpgsql' }]);
  await database.db.raw(
    "INSERT INTO orders (id, status, callback_url, payload) SELECT g, 5, 'https://p' || g % 50 || '.example/cb', '{}' FROM generate_series(1, 20000) g",
  );
  await database.db.raw('ANALYZE orders');
  const plan = (
    await database.db.raw<{ rows: { 'QUERY PLAN': string }[] }>(
      "EXPLAIN SELECT id FROM orders WHERE status = 5 AND callback_origin(callback_url) = 'https://p7.example' ORDER BY GREATEST(next_attempt_at, lease_until), id LIMIT 10",
    )
  ).rows
    .map((r) => r['QUERY PLAN'])
    .join('\n');
  expect(plan).toMatch(/orders_ready_origin_idx/);
});
