import type { Db } from '../db/connection';
import { countLastAttemptsDue, countOrders, type OrderCounts } from '../db/reports/order-counts';
import {
  countRecentOutcomes,
  type FailingHost,
  findRetryingHosts,
  findTopFailingHosts,
  type RecentOutcomes,
  type RetryingHost,
} from '../db/reports/recent-outcomes';
import { type CallbackQueues, sumJobCounts } from '../queue/shards';
import type { AdminServices, Unreachable } from './admin-services';

/** What Postgres holds. */
export interface OrderStats {
  /** Ready: exact up to READY_COUNT_CAP; delivered, failed, other: the planner's estimates (db/reports/order-counts.ts). */
  orders: Omit<OrderCounts, 'oldestReadyAgeSeconds'>;
  /** The number to watch: how long the longest-waiting ready order has waited (null: none is ready). */
  oldestReadyAgeSeconds: number | null;
  recent: RecentOutcomes;
  /** Orders at 5 whose last attempt comes within the next hour: they end 7 if it fails too. */
  lastAttemptWithinHour: number;
  /** More due orders than LAST_ATTEMPTS_SCAN_CAP: lastAttemptWithinHour counts the soonest of them only. */
  lastAttemptWithinHourAtLeast: boolean;
  /** Hosts of the orders that ended 7 in the last 24 hours, most first (top 10). */
  topFailingHosts: FailingHost[];
  /** Hosts with the most retried attempts in the same window as `recent` (top 10). */
  retryingHosts: RetryingHost[];
}

export interface QueueDepths {
  waiting: number;
  active: number;
  delayed: number;
  prioritized: number;
}

/** What Redis holds: all shards together, and each shard's queue when there is more than one (QUEUE_SHARDS). */
export interface QueueStats {
  queue: QueueDepths;
  shards?: Record<string, QueueDepths>;
}

/**
 * What could be read: with Postgres unreachable its fields are null (`orders` is the one to test), with
 * Redis unreachable `queue` is; `unreachable` says which, where, and why.
 */
export type Stats = { [K in keyof OrderStats]: OrderStats[K] | null } & {
  queue: QueueDepths | null;
  shards?: Record<string, QueueDepths>;
  unreachable: Unreachable[];
};

/** How far back `stats --minutes` may look (a year): keeps Postgres' interval arithmetic in range. */
export const MAX_STATS_MINUTES = 525_600;

const depthsOf = (jobs: Record<string, number>): QueueDepths => ({
  waiting: jobs.waiting ?? 0,
  active: jobs.active ?? 0,
  delayed: jobs.delayed ?? 0,
  prioritized: jobs.prioritized ?? 0,
});

export async function readOrderStats(db: Db, maxAttempts: number, windowMinutes: number): Promise<OrderStats> {
  const [{ oldestReadyAgeSeconds, oldestReadySince: _, ...orders }, lastAttempts, recent, topFailingHosts, retryingHosts] =
    await Promise.all([
      countOrders(db),
      countLastAttemptsDue(db, maxAttempts, 60),
      countRecentOutcomes(db, windowMinutes),
      findTopFailingHosts(db, 10),
      findRetryingHosts(db, windowMinutes, 10),
    ]);
  return {
    orders,
    oldestReadyAgeSeconds,
    recent,
    lastAttemptWithinHour: lastAttempts.count,
    lastAttemptWithinHourAtLeast: lastAttempts.atLeast,
    topFailingHosts,
    retryingHosts,
  };
}

export async function readQueueDepths(queues: Pick<CallbackQueues, 'jobCountsByShard'>): Promise<QueueStats> {
  const byShard = await queues.jobCountsByShard('waiting', 'active', 'delayed', 'prioritized');
  return {
    queue: depthsOf(sumJobCounts([...byShard.values()])),
    ...(byShard.size > 1 && { shards: Object.fromEntries([...byShard].map(([name, jobs]) => [name, depthsOf(jobs)])) }),
  };
}

/** Both halves at once, each within the command's deadline; a service that does not answer leaves its half null. */
export async function collectStats(services: AdminServices, maxAttempts: number, windowMinutes = 15): Promise<Stats> {
  const [fromPostgres, fromRedis] = await Promise.all([
    services.readIfReachable('postgres', async () => readOrderStats(await services.postgres(), maxAttempts, windowMinutes)),
    services.readIfReachable('redis', async () => readQueueDepths(await services.callbackQueues())),
  ]);
  const none: { [K in keyof OrderStats]: null } = {
    orders: null,
    oldestReadyAgeSeconds: null,
    recent: null,
    lastAttemptWithinHour: null,
    lastAttemptWithinHourAtLeast: null,
    topFailingHosts: null,
    retryingHosts: null,
  };
  return {
    ...(fromPostgres ?? none),
    queue: fromRedis?.queue ?? null,
    ...(fromRedis?.shards && { shards: fromRedis.shards }),
    unreachable: services.unreachable,
  };
}

export function formatStats(stats: Stats, queueName: string): string {
  const missing = (service: string) => {
    const u = stats.unreachable.find((x) => x.service === service);
    return `  - (${service} unreachable${u ? ` at ${u.address}` : ''})`;
  };
  const { orders, recent, queue } = stats;
  const lines: string[] = ["orders (~: the planner's estimate)"];
  if (orders === null || recent === null) {
    lines.push(missing('postgres'));
  } else {
    const age = stats.oldestReadyAgeSeconds === null ? '-' : `${stats.oldestReadyAgeSeconds}s`;
    const estimate = (n: number | null) => (n === null ? '- (not analyzed yet)' : `~${n}`);
    lines.push(
      `  ready (5)      ${orders.readyAtLeast ? '>= ' : ''}${orders.ready}`,
      `  delivered (6)  ${estimate(orders.delivered)}`,
      `  failed (7)     ${estimate(orders.failed)}`,
      `  other          ${estimate(orders.other)}`,
      `  oldest ready   ${age}`,
      `  last try < 1h  ${stats.lastAttemptWithinHourAtLeast ? '>= ' : ''}${stats.lastAttemptWithinHour}`,
      `last ${recent.windowMinutes} minutes`,
      `  delivered      ${recent.delivered}`,
      `  retried        ${recent.retried}`,
      `  failed         ${recent.failed}`,
    );
  }
  lines.push(stats.shards ? `queue ${queueName}, ${Object.keys(stats.shards).length} shards` : `queue ${queueName}`);
  if (queue === null) lines.push(missing('redis'));
  else {
    lines.push(
      `  waiting        ${queue.waiting}`,
      `  active         ${queue.active}`,
      `  delayed        ${queue.delayed}`,
      `  prioritized    ${queue.prioritized}`,
    );
    for (const [name, depths] of Object.entries(stats.shards ?? {})) {
      lines.push(
        `  ${name}: ${depths.waiting} waiting, ${depths.active} active, ${depths.delayed} delayed, ${depths.prioritized} prioritized`,
      );
    }
  }
  if (stats.topFailingHosts === null || stats.retryingHosts === null || recent === null) return lines.join('\n');
  lines.push('top failing hosts, last 24 hours');
  if (stats.topFailingHosts.length === 0) lines.push('  -');
  for (const { host, failures, gone } of stats.topFailingHosts) {
    lines.push(`  ${String(failures).padStart(6)}  ${host}${gone ? '  (answers 410 Gone: the endpoint was removed)' : ''}`);
  }
  lines.push(`hosts retried in the last ${recent.windowMinutes} minutes`);
  if (stats.retryingHosts.length === 0) lines.push('  -');
  for (const { host, retries } of stats.retryingHosts) lines.push(`  ${String(retries).padStart(6)}  ${host}`);
  return lines.join('\n');
}
