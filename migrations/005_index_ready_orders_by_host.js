// Deferring a whole host's ready orders when its circuit opens must not scan every ready order.

exports.up = async function up(knex) {
  await knex.raw('CREATE INDEX IF NOT EXISTS orders_ready_host_idx ON orders (callback_host(callback_url)) WHERE status = 5');
};

exports.down = async function down(knex) {
  await knex.raw('DROP INDEX IF EXISTS orders_ready_host_idx');
};
