// The highest generation each queue's Redis has shown: a counter the producers increment in Redis, so
// that Redis coming back with older data (a restore from an older snapshot, a failover to a replica
// that lagged) is told apart even when the marker key it keeps survived.

exports.up = async function up(knex) {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS queue_generations (
      queue_name  text PRIMARY KEY,
      seen        bigint NOT NULL,
      updated_at  timestamptz NOT NULL DEFAULT now()
    )
  `);
};

exports.down = async function down(knex) {
  await knex.raw('DROP TABLE IF EXISTS queue_generations');
};
