// Admin support: who requeued what, and the host of a callback URL as SQL can group and filter by.

exports.up = async function up(knex) {
  // One row per `requeue` run, dry runs included: when, who, what selector, how many matched and changed.
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS requeue_audit (
      id                bigserial PRIMARY KEY,
      at                timestamptz NOT NULL DEFAULT now(),
      actor             text NOT NULL,
      selector          jsonb NOT NULL,
      matched           integer NOT NULL,
      changed           integer NOT NULL,
      dry_run           boolean NOT NULL,
      resend_delivered  boolean NOT NULL DEFAULT false
    )
  `);
  // The host part of a callback URL (no scheme, userinfo, port or path), lower-cased; NULL when the
  // value is not a URL. (\\? is knex's escape for a literal question mark.) One definition for the requeue filter, stats and the status page.
  await knex.raw(`
    CREATE OR REPLACE FUNCTION callback_host(url text) RETURNS text
      LANGUAGE sql IMMUTABLE PARALLEL SAFE
      AS $$ SELECT lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(\\?:[^/\\?#@]*@)\\?(\\[[^\\]]*\\]|[^/\\?#:]+)')) $$
  `);
};

exports.down = async function down(knex) {
  await knex.raw('DROP TABLE IF EXISTS requeue_audit');
  await knex.raw('DROP FUNCTION IF EXISTS callback_host(text)');
};
