import type { Db } from './connection';

/** A producer's hold on the right to lease orders: the statement that leases them checks it. */
export interface ProducerFence {
  name: string;
  token: string;
}

/**
 * Takes the producer lease `name` for `ttlMs` (Postgres' clock), or renews it if `token` holds it
 * already. True when held: nobody held it, the holder's lease had run out, or it was ours.
 */
export async function takeProducerLease(db: Db, fence: ProducerFence, holder: string, ttlMs: number): Promise<boolean> {
  // A read first: trying to take a lease someone holds would still lock and write its row, every time
  // a replica wakes.
  const current = await db.raw('SELECT 1 FROM producer_leases WHERE name = ? AND expires_at > now() AND token <> ?', [fence.name, fence.token]);
  if (current.rows.length > 0) return false;
  const { rows } = await db.raw(
    `INSERT INTO producer_leases AS l (name, holder, token, expires_at) VALUES (?, ?, ?, now() + ? * interval '1 millisecond')
     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
      WHERE l.expires_at <= now() OR l.token = EXCLUDED.token
     RETURNING 1 AS held`,
    [fence.name, holder, fence.token, ttlMs],
  );
  return rows.length === 1;
}

/** Lets the lease go at once, if `token` still holds it: another replica may take it on its next run. */
export async function releaseProducerLease(db: Db, fence: ProducerFence): Promise<void> {
  await db.raw('UPDATE producer_leases SET expires_at = now() WHERE name = ? AND token = ?', [fence.name, fence.token]);
}

/**
 * The condition every lease statement adds, with knex's `?` placeholders for the lease's name and token:
 * it leases orders only while its producer's lease is current by Postgres' clock. A producer that was
 * paused past its lease's end, and another replica took over, leases nothing when it wakes.
 */
export const PRODUCER_FENCE = `EXISTS (SELECT 1 FROM producer_leases WHERE name = ? AND token = ?::uuid AND expires_at > now())`;
