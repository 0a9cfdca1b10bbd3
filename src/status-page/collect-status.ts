import type { Db } from '../db/connection';
import { countOrders, type OrderCounts } from '../db/count-orders';
import { deliveriesPerMinute, type MinuteCounts } from '../db/deliveries-per-minute';
import { findRecentFailures, type RecentFailure } from '../db/find-recent-failures';
import { findTopFailingHosts, type FailingHost } from '../db/find-top-failing-hosts';
import { redactError } from './redact-error';

export interface Status {
  generatedAt: string;
  orders: OrderCounts;
  perMinute: MinuteCounts[];
  recentFailures: RecentFailure[];
  topFailingHosts: FailingHost[];
}

/**
 * Everything the status page shows, read from Postgres (the truth), in one go. Errors leave here
 * redacted, so the page and /api/status show the same thing.
 */
export async function collectStatus(db: Db): Promise<Status> {
  const [orders, perMinute, recentFailures, topFailingHosts] = await Promise.all([
    countOrders(db),
    deliveriesPerMinute(db, 60),
    findRecentFailures(db, 20),
    findTopFailingHosts(db, 10),
  ]);
  return {
    generatedAt: new Date().toISOString(),
    orders,
    perMinute,
    recentFailures: recentFailures.map((f) => ({ ...f, error: redactError(f.error) })),
    topFailingHosts,
  };
}
