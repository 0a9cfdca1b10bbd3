// Per-partner signing secrets, keyed by the callback URL's host (callback_host(), migration 003).
// A host with active secrets is signed with all of them (rotation without downtime); a host with none
// gets CALLBACK_SECRET. Retired secrets stay for the record; they are never used again.

exports.up = async function up(knex) {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS partner_secrets (
      id          bigserial PRIMARY KEY,
      host        text NOT NULL CHECK (host = lower(host)),
      secret      text NOT NULL CHECK (secret LIKE 'whsec\\_%'),
      created_at  timestamptz NOT NULL DEFAULT now(),
      retired_at  timestamptz
    )
  `);
  await knex.raw('CREATE INDEX IF NOT EXISTS partner_secrets_active_idx ON partner_secrets (host) WHERE retired_at IS NULL');
};

exports.down = async function down(knex) {
  await knex.raw('DROP TABLE IF EXISTS partner_secrets');
};
