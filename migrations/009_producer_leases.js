// Which producer may lease orders now: a row with an expiry, taken and renewed by its holder, and
// checked by the lease statement itself (the token, the expiry by Postgres' clock). A session advisory
// lock held by a producer that froze (SIGSTOP, a VM pause) or wedged never ran out: no other replica
// could enqueue for as long as its session lived.

exports.up = async function up(knex) {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS producer_leases (
      name        text PRIMARY KEY,
      -- Who holds it, for people (host:pid).
      holder      text NOT NULL,
      -- The fence: a lease statement leases orders only while its token is the one here, unexpired.
      token       uuid NOT NULL,
      expires_at  timestamptz NOT NULL
    )
  `);
};

exports.down = async function down(knex) {
  await knex.raw('DROP TABLE IF EXISTS producer_leases');
};
