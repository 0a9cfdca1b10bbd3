import type { Db } from './connection';

/** A producer's hold on the right to lease orders: the statement that leases them checks it. */
export interface ProducerFence {
  name: string;
  token: string;
}

/** The answer to asking for a producer lease: held by the asker, or by another for about `heldForMs` more. */
export type LeaseAnswer = { held: true } | { held: false; heldForMs: number };

/**
 * Takes the producer lease `name` for `ttlMs` (Postgres' clock), or renews it if `token` holds it
 * already. Held: nobody held it, the holder's lease had run out, or it was ours. Otherwise the answer says
 * how long the other holder's lease has left by Postgres' clock (0 when it was lost in a race), so the
 * asker need not ask again before then.
 */
export async function askProducerLease(db: Db, fence: ProducerFence, holder: string, ttlMs: number): Promise<LeaseAnswer> {
  // A read first: trying to take a lease someone holds would still lock and write its row, every time
  // a replica wakes.
  const current = await db.raw(
    `SELECT ceil(extract(epoch FROM expires_at - now()) * 1000)::int AS left_ms
       FROM producer_leases WHERE name = ? AND expires_at > now() AND token <> ?`,
    [fence.name, fence.token],
  );
  if (current.rows.length > 0) return { held: false, heldForMs: Number(current.rows[0].left_ms) };
  const { rows } = await db.raw(
    `INSERT INTO producer_leases AS l (name, holder, token, expires_at) VALUES (?, ?, ?, now() + ? * interval '1 millisecond')
     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
      WHERE l.expires_at <= now() OR l.token = EXCLUDED.token
     RETURNING 1 AS held`,
    [fence.name, holder, fence.token, ttlMs],
  );
  return rows.length === 1 ? { held: true } : { held: false, heldForMs: 0 };
}

/** askProducerLease, answered yes or no. */
export async function takeProducerLease(db: Db, fence: ProducerFence, holder: string, ttlMs: number): Promise<boolean> {
  return (await askProducerLease(db, fence, holder, ttlMs)).held;
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
