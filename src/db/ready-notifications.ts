import type { Db } from './connection';

/** The channel the producers LISTEN on. */
export const READY_CHANNEL = 'order_callbacks_ready';

/** Serialises the replicas that rewrite the trigger function at start (any constant: one lock, one purpose). */
const REWRITE_LOCK = 0x0c5_4a2d;

/**
 * The body of orders_notify_ready(), the trigger function that wakes the producers when an order
 * becomes ready, for `shards` shards. With one shard the payload is empty, as migration 001 writes it.
 * With more it names the order's shard as `<shards>:<shard>`, so only that shard's producer loops wake;
 * Postgres still folds the identical notifications of a transaction, so a bulk insert sends at most one
 * per shard. The number of shards rides along because replicas may disagree about it while it changes:
 * one that reads another count wakes all its loops.
 */
export function notifyReadyBody(shards: number): string {
  const payload = shards === 1 ? `''` : `'${shards}:' || abs(mod(NEW.id, ${shards}::bigint))::text`;
  return `
    BEGIN
      PERFORM pg_notify('${READY_CHANNEL}', ${payload});
      RETURN NULL;
    END
    `;
}

/**
 * Makes orders_notify_ready() name the shard of each ready order for `shards` shards (notifyReadyBody).
 * Rewrites the function only when its body differs, under a transaction lock, so replicas starting
 * together do not collide. Returns false, and changes nothing, when the role may not replace the
 * function (it is not its owner): notifications then stay empty and wake every shard's loop, which is
 * slower with many shards but loses nothing.
 */
export async function routeReadyNotifications(db: Db, shards: number): Promise<boolean> {
  const body = notifyReadyBody(shards);
  return db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(?)', [REWRITE_LOCK]);
    // The function the trigger calls, by its schema: a name looked up on the search_path could find, or
    // create, another one.
    const { rows } = await trx.raw<{ rows: { qualified: string; prosrc: string; owned: boolean }[] }>(
      `SELECT quote_ident(n.nspname) || '.' || quote_ident(p.proname) AS qualified, p.prosrc,
              pg_has_role(p.proowner, 'USAGE') AS owned
         FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE t.tgrelid = 'orders'::regclass AND t.tgname = 'orders_ready_after_insert'`,
    );
    const current = rows[0];
    if (current === undefined || !current.owned) return false;
    if (current.prosrc === body) return true;
    await trx.raw(`CREATE OR REPLACE FUNCTION ${current.qualified}() RETURNS trigger AS $$${body}$$ LANGUAGE plpgsql`);
    return true;
  });
}

/**
 * Tells every replica that `shard`'s producer lease was let go by a replica that stops: those that saw it
 * held wait for no notification of their own to take it.
 */
export async function announceReleased(db: Db, shard: { index: number; count: number }): Promise<void> {
  await db.raw('SELECT pg_notify(?, ?)', [READY_CHANNEL, `${shard.count}:${shard.index}:released`]);
}

/** The shard a notification names (notifyReadyBody, announceReleased), or undefined when it names none. */
export function shardNamed(payload: string | undefined): { count: number; index: number; released: boolean } | undefined {
  const match = /^(\d+):(\d+)(:released)?$/.exec(payload ?? '');
  return match ? { count: Number(match[1]), index: Number(match[2]), released: match[3] !== undefined } : undefined;
}
