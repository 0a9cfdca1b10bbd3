// One row per delivery attempt: what an operator reads when a partner says "we never got it".

exports.up = async function up(knex) {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS delivery_log (
      id           bigserial PRIMARY KEY,
      order_id     bigint NOT NULL,
      attempt      integer NOT NULL,
      started_at   timestamptz NOT NULL,
      duration_ms  integer NOT NULL,
      http_status  smallint,
      error        text,
      -- delivered | retry | failed | released (aborted by shutdown, handed back without counting)
      outcome      text NOT NULL,
      worker       text NOT NULL,
      -- true when the attempt's result could not be recorded on the order because its claim was no
      -- longer the current one (another worker took over, or the order changed meanwhile).
      superseded   boolean NOT NULL DEFAULT false
    )
  `);
  await knex.raw('CREATE INDEX IF NOT EXISTS delivery_log_order_idx ON delivery_log (order_id, id)');
  await knex.raw('CREATE INDEX IF NOT EXISTS delivery_log_started_idx ON delivery_log (started_at)');
};

exports.down = async function down(knex) {
  await knex.raw('DROP TABLE IF EXISTS delivery_log');
};
