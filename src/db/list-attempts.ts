import type { Db } from './connection';

export interface AttemptRecord {
  attempt: number;
  started_at: Date;
  duration_ms: number;
  http_status: number | null;
  error: string | null;
  outcome: string;
  worker: string;
  superseded: boolean;
}

/** Every attempt at one order, oldest first: the answer to "we never got it". */
export async function listAttempts(db: Db, orderId: string): Promise<AttemptRecord[]> {
  return db('delivery_log')
    .where({ order_id: orderId })
    .orderBy('id')
    .select('attempt', 'started_at', 'duration_ms', 'http_status', 'error', 'outcome', 'worker', 'superseded');
}
