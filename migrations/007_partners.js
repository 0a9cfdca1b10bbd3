// Partners as the producer and operators see them: the origin of a callback URL in SQL, the ready
// orders indexed by it, and the audit of partners paused and resumed by hand.
//
// A held partner's orders stay where they are: the producer leases per partner through
// orders_ready_origin_idx and skips the held ones (a lookup per partner, not a walk past their backlog).
// It replaces orders_ready_host_idx, which served a bulk deferral that holds no longer need.
//
// The index is built by a plain CREATE INDEX, which blocks writes to orders while it reads the table
// (see migrate.ts for why not CONCURRENTLY). On a large table, build it first by hand, without
// blocking, and this migration finds it there:
//   CREATE INDEX CONCURRENTLY orders_ready_origin_idx ON orders (callback_origin(callback_url),
//     (GREATEST(next_attempt_at, lease_until)), id) WHERE status = 5;
// (after creating the function below the same way).

// scheme://host[:port] of an http(s) URL as the WHATWG URL parser spells its origin: scheme and host
// lower-cased, userinfo dropped, the default port (80, 443) left out, leading zeros of a port dropped.
// NULL for anything else. Hosts that the parser would rewrite further (IDN to punycode, "127.1" to
// "127.0.0.1", percent-escapes) come out as written: such orders are held by the workers one at a time
// instead of by the producer. Never raises: it runs in an index on every write of an order.
// (\\? is knex's escape for a literal question mark.)
const CALLBACK_ORIGIN = `
  CREATE OR REPLACE FUNCTION callback_origin(url text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
      SELECT CASE
        WHEN m IS NULL OR m[2] = '' THEN NULL
        WHEN m[3] IS NULL OR m[3] = '' THEN lower(m[1]) || '://' || lower(m[2])
        WHEN length(m[3]) > 5 THEN NULL
        WHEN (lower(m[1]) = 'http' AND m[3]::int = 80) OR (lower(m[1]) = 'https' AND m[3]::int = 443)
          THEN lower(m[1]) || '://' || lower(m[2])
        ELSE lower(m[1]) || '://' || lower(m[2]) || ':' || m[3]::int
      END
      FROM (SELECT regexp_match(url, '^\\s*(https\\?)://(\\?:[^/\\?#\\\\]*@)\\?(\\[[^]/\\?#\\\\]*\\]|[^/\\?#:\\\\@]*)(\\?::([0-9]*))\\?(\\?:[/\\?#\\\\]|\\s*$)', 'i') AS m) parsed
    $$`;

exports.up = async function up(knex) {
  // CREATE INDEX needs a lock that waits behind long transactions on orders, and every query on the
  // table would queue behind it: give up instead, and let the migration be run again.
  await knex.raw("SET LOCAL lock_timeout = '5s'");
  await knex.raw(CALLBACK_ORIGIN);
  await knex.raw(`
    CREATE INDEX IF NOT EXISTS orders_ready_origin_idx
      ON orders (callback_origin(callback_url), (GREATEST(next_attempt_at, lease_until)), id)
      WHERE status = 5
  `);
  await knex.raw('DROP INDEX IF EXISTS orders_ready_host_idx');
  // One row per `partners pause` or `partners resume`: who, when, which partner, why, and its state
  // before and after.
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS partner_audit (
      id            bigserial PRIMARY KEY,
      at            timestamptz NOT NULL DEFAULT now(),
      actor         text NOT NULL,
      action        text NOT NULL CHECK (action IN ('pause', 'resume')),
      origin        text NOT NULL,
      reason        text,
      paused_until  timestamptz,
      state_before  text,
      state_after   text
    )
  `);
  await knex.raw('CREATE INDEX IF NOT EXISTS partner_audit_origin_idx ON partner_audit (origin, at)');
};

exports.down = async function down(knex) {
  await knex.raw("SET LOCAL lock_timeout = '5s'");
  await knex.raw('DROP TABLE IF EXISTS partner_audit');
  await knex.raw('CREATE INDEX IF NOT EXISTS orders_ready_host_idx ON orders (callback_host(callback_url)) WHERE status = 5');
  await knex.raw('DROP INDEX IF EXISTS orders_ready_origin_idx');
  await knex.raw('DROP FUNCTION IF EXISTS callback_origin(text)');
};
