// The orders table as the order system writes it, plus the columns the daemon owns.
// Inserting only (id, status, callback_url, payload) is enough: every other column has a default.
// Status: 5 = ready for callback, 6 = delivered, 7 = failed for good.

exports.up = async function up(knex) {
  await knex.raw(`
    CREATE TABLE IF NOT EXISTS orders (
      id               bigint PRIMARY KEY,
      status           smallint NOT NULL,
      callback_url     text,
      payload          jsonb,
      version          integer NOT NULL DEFAULT 0,
      attempts         integer NOT NULL DEFAULT 0,
      last_error       text,
      next_attempt_at  timestamptz NOT NULL DEFAULT now(),
      created_at       timestamptz NOT NULL DEFAULT now(),
      updated_at       timestamptz NOT NULL DEFAULT now(),
      delivered_at     timestamptz,
      -- When the order last became ready (5): what "age of the oldest pending order" measures.
      ready_since      timestamptz NOT NULL DEFAULT now(),
      -- Held by a producer (enqueued) or a worker (claimed) until then; NULL = not held.
      lease_until      timestamptz,
      -- The fence: set by the worker that claimed the order; its final update must match it.
      claim_token      uuid
    )
  `);

  // The producer's index: orders at 5 in the order they become visible (due and not held).
  // GREATEST ignores NULLs, so an order nobody holds is visible from next_attempt_at on.
  // Visible orders are a prefix of this index; pages are read with a keyset cursor over it.
  await knex.raw(`
    CREATE INDEX IF NOT EXISTS orders_ready_idx
      ON orders ((GREATEST(next_attempt_at, lease_until)), id)
      WHERE status = 5
  `);

  // The oldest order at 5, for stats and alerting, without a scan.
  await knex.raw('CREATE INDEX IF NOT EXISTS orders_ready_since_idx ON orders (ready_since) WHERE status = 5');

  // version +1 on every status change, whoever makes it (the daemon, the order system, an admin),
  // so a conditional update that checks the version it read cannot be fooled by 5 -> x -> 5 (ABA).
  // A status change also drops any lease and claim: they were about the previous state.
  await knex.raw(`
    CREATE OR REPLACE FUNCTION orders_before_update() RETURNS trigger AS $$
    BEGIN
      IF NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.version := OLD.version + 1;
        NEW.lease_until := NULL;
        NEW.claim_token := NULL;
        IF NEW.status = 5 THEN
          NEW.ready_since := now();
        END IF;
      END IF;
      NEW.updated_at := now();
      RETURN NEW;
    END
    $$ LANGUAGE plpgsql
  `);
  await knex.raw(`
    CREATE TRIGGER orders_before_update BEFORE UPDATE ON orders
      FOR EACH ROW EXECUTE FUNCTION orders_before_update()
  `);

  // Wake the producers when an order becomes ready. The payload is empty on purpose: Postgres folds
  // identical notifications of one transaction into one, so a bulk insert of a million rows sends one.
  await knex.raw(`
    CREATE OR REPLACE FUNCTION orders_notify_ready() RETURNS trigger AS $$
    BEGIN
      PERFORM pg_notify('order_callbacks_ready', '');
      RETURN NULL;
    END
    $$ LANGUAGE plpgsql
  `);
  await knex.raw(`
    CREATE TRIGGER orders_ready_after_insert AFTER INSERT ON orders
      FOR EACH ROW WHEN (NEW.status = 5) EXECUTE FUNCTION orders_notify_ready()
  `);
  await knex.raw(`
    CREATE TRIGGER orders_ready_after_update AFTER UPDATE OF status ON orders
      FOR EACH ROW WHEN (NEW.status = 5 AND OLD.status IS DISTINCT FROM 5) EXECUTE FUNCTION orders_notify_ready()
  `);
};

exports.down = async function down(knex) {
  await knex.raw('DROP TABLE IF EXISTS orders');
  await knex.raw('DROP FUNCTION IF EXISTS orders_before_update()');
  await knex.raw('DROP FUNCTION IF EXISTS orders_notify_ready()');
};
