/** One order and every attempt at it, as `inspect` shows them. */
import type { Db } from '../connection';

export interface OrderRecord {
  id: string;
  status: number;
  callback_url: string | null;
  payload: unknown;
  version: number;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date;
  created_at: Date;
  updated_at: Date;
  delivered_at: Date | null;
  ready_since: Date;
  lease_until: Date | null;
  claim_token: string | null;
  /** NULL for a claim made before migration 006, which kept its expiry in lease_until. */
  claim_until: Date | null;
}

export async function findOrder(db: Db, orderId: string): Promise<OrderRecord | undefined> {
  return db('orders').where({ id: orderId }).first();
}

/** One delivery_log row: an attempt as it was logged (AttemptRecord is the one about to be recorded). */
export interface LoggedAttempt {
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
export async function listAttempts(db: Db, orderId: string): Promise<LoggedAttempt[]> {
  return db('delivery_log')
    .where({ order_id: orderId })
    .orderBy('id')
    .select('attempt', 'started_at', 'duration_ms', 'http_status', 'error', 'outcome', 'worker', 'superseded');
}
