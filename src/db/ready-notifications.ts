import type { Db } from './connection';

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
      PERFORM pg_notify('order_callbacks_ready', ${payload});
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
    const { rows } = await trx.raw(
      `SELECT prosrc, pg_has_role(proowner, 'USAGE') AS owned FROM pg_proc WHERE oid = 'orders_notify_ready()'::regprocedure`,
    );
    if (rows[0]?.prosrc === body) return true;
    if (!rows[0]?.owned) return false;
    await trx.raw(`CREATE OR REPLACE FUNCTION orders_notify_ready() RETURNS trigger AS $$${body}$$ LANGUAGE plpgsql`);
    return true;
  });
}

/** The shard a notification names (notifyReadyBody), or undefined when it names none. */
export function shardNamed(payload: string | undefined): { count: number; index: number } | undefined {
  const match = /^(\d+):(\d+)$/.exec(payload ?? '');
  return match ? { count: Number(match[1]), index: Number(match[2]) } : undefined;
}
