'use strict';
// A fresh database per scenario, migrated with the daemon's own command, dropped afterwards.
const { execFileSync } = require('node:child_process');
const { Client } = require('pg');
const { CLI } = require('./processes');

const ADMIN_URL = process.env.BENCH_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
let counter = 0;

async function admin(sql) {
  const client = new Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

async function createDatabase() {
  const name = `oc_bench_${process.pid}_${++counter}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  execFileSync(process.execPath, [CLI, 'migrate'], { env: { PATH: process.env.PATH, DATABASE_URL: url.toString() }, stdio: 'ignore' });
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  return {
    url: url.toString(),
    client,
    /** `count` orders at 5 from id `from`, for `callbackUrl`, or spread over a list of urls by id. */
    insert: (from, count, callbackUrl) =>
      client.query(
        `INSERT INTO orders (id, status, callback_url, payload)
         SELECT g, 5, ($1::text[])[1 + g % cardinality($1::text[])], jsonb_build_object('sku', 'SKU-' || g, 'quantity', 1)
         FROM generate_series($2::bigint, $3::bigint) g`,
        [[callbackUrl].flat(), from, from + count - 1],
      ),
    delivered: async (from, to) =>
      Number((await client.query('SELECT count(*) AS n FROM orders WHERE status = 6 AND id >= $1 AND id < $2', [from, to])).rows[0].n),
    drop: async () => {
      await client.end();
      await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

module.exports = { createDatabase, admin };
