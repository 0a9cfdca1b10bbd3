// Gauges that cost the same on a table of 100 M orders as on one of 1,000, computed by one replica at a
// time and read by every scrape from one row; and the turns of the periodic maintenance (the gauges,
// the delivery log's retention) that one replica at a time takes, decided by Postgres' clock.
//
// Nothing here touches orders or delivery_log: the queries read existing indexes (orders_ready_since_idx,
// orders_ready_idx, delivery_log_started_idx).

exports.up = async function up(knex) {
  // One row per periodic task. A replica takes the task's turn when nobody holds it (held_until passed)
  // and its last run started at least its interval ago; the writes of the run check that the token is
  // still the holder's, so a replica that froze past held_until and woke writes nothing.
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS maintenance_turns (
      name             text PRIMARY KEY,
      -- Who holds or held it, for people (host:pid).
      holder           text NOT NULL,
      token            uuid NOT NULL,
      held_until       timestamptz NOT NULL,
      last_started_at  timestamptz NOT NULL
    )
  `);
  // The order gauges as last computed (one row: id is always true). Counts of 6, 7 and other statuses
  // are the planner's estimates (pg_class.reltuples × pg_stats' frequency of the status), refreshed by
  // (auto)ANALYZE; see src/db/reports/order-counts.ts.
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS order_gauges (
      id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
      computed_at         timestamptz NOT NULL,
      ready               bigint NOT NULL,
      ready_at_least      boolean NOT NULL,
      delivered           bigint,
      failed              bigint,
      other               bigint,
      oldest_ready_since  timestamptz
    )
  `);
};

exports.down = async function down(knex) {
  await knex.raw('DROP TABLE IF EXISTS order_gauges');
  await knex.raw('DROP TABLE IF EXISTS maintenance_turns');
};
