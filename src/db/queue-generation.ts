import type { Db } from './connection';

/**
 * Records that the queue's Redis has shown `generation`, and answers the highest it had shown before
 * (undefined the first time). Redis showing a generation no higher than one it showed before has gone
 * back in time: its data since then is lost.
 */
export async function recordQueueGeneration(db: Db, queueName: string, generation: number): Promise<number | undefined> {
  const { rows } = await db.raw<{ rows: { before: string | null }[] }>(
    `WITH before AS (SELECT seen FROM queue_generations WHERE queue_name = ?)
     INSERT INTO queue_generations (queue_name, seen) VALUES (?, ?)
     ON CONFLICT (queue_name) DO UPDATE SET seen = GREATEST(queue_generations.seen, EXCLUDED.seen), updated_at = now()
     RETURNING (SELECT seen FROM before) AS before`,
    [queueName, queueName, generation],
  );
  return rows[0].before === null ? undefined : Number(rows[0].before);
}

/** After a loss is dealt with: Redis' generation now is the one to compare with from here on. */
export async function resetQueueGeneration(db: Db, queueName: string, generation: number): Promise<void> {
  await db.raw('UPDATE queue_generations SET seen = ?, updated_at = now() WHERE queue_name = ?', [generation, queueName]);
}
