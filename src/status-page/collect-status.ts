import type { Db } from '../db/connection';
import { countOrders, type OrderCounts } from '../db/reports/order-counts';
import {
  deliveriesPerMinute,
  type FailingHost,
  findRecentFailures,
  findTopFailingHosts,
  type MinuteCounts,
  type RecentFailure,
} from '../db/reports/recent-outcomes';
import { type CircuitRules, type CircuitState, effectiveState } from '../partners/partner-circuit';
import type { PartnerDirectory } from '../partners/partner-directory';
import { withTimeout } from '../with-timeout';
import { redactError } from './redact-error';

export interface HeldPartner {
  origin: string;
  state: CircuitState;
  since: string;
  /** When it ends by itself; null: when an operator resumes it. */
  until: string | null;
  reason: string;
  actor: string | null;
}

/** The partner directory is in Redis: the page must not wait on it for long. */
const PARTNERS_TIMEOUT_MS = 2000;

export interface Status {
  generatedAt: string;
  /** Ready: exact up to READY_COUNT_CAP; delivered, failed, other: the planner's estimates (db/reports/order-counts.ts). */
  orders: OrderCounts;
  perMinute: MinuteCounts[];
  recentFailures: RecentFailure[];
  topFailingHosts: FailingHost[];
  /** Partners that are not closed, longest first; null when Redis did not answer. */
  heldPartners: HeldPartner[] | null;
}

/**
 * Everything the status page shows, read from Postgres (the truth), in one go. Errors leave here
 * redacted, so the page and /api/status show the same thing.
 */
export async function collectStatus(db: Db, partners?: { directory: PartnerDirectory; rules: CircuitRules }): Promise<Status> {
  const [{ oldestReadySince: _, ...orders }, perMinute, recentFailures, topFailingHosts, heldPartners] = await Promise.all([
    countOrders(db),
    deliveriesPerMinute(db, 60),
    findRecentFailures(db, 20),
    findTopFailingHosts(db, 10),
    partners ? readHeldPartners(partners.directory, partners.rules) : Promise.resolve([]),
  ]);
  return {
    generatedAt: new Date().toISOString(),
    orders,
    perMinute,
    recentFailures: recentFailures.map((f) => ({ ...f, error: redactError(f.error) })),
    topFailingHosts,
    heldPartners,
  };
}

/** The partners that are not closed, as they stand now (a hold whose end has passed is half-open). */
async function readHeldPartners(directory: PartnerDirectory, rules: CircuitRules): Promise<HeldPartner[] | null> {
  try {
    const { now, states } = await withTimeout(directory.notClosed(), PARTNERS_TIMEOUT_MS, 'the partner directory did not answer');
    return [...states]
      .map(([origin, s]): [string, typeof s] => [origin, effectiveState(s, now, rules)])
      .sort((a, b) => a[1].since - b[1].since)
      .map(([origin, s]) => ({
        origin,
        state: s.state,
        since: new Date(s.since).toISOString(),
        until: s.until > 0 ? new Date(s.until).toISOString() : null,
        reason: s.reason,
        actor: s.actor ?? null,
      }));
  } catch {
    return null;
  }
}
