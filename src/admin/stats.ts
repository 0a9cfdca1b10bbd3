import type { Db } from '../db/connection';
import { countLastAttemptsDue, countOrders, type OrderCounts } from '../db/count-orders';
import { countRecentOutcomes, type RecentOutcomes } from '../db/count-recent-outcomes';
import { findRetryingHosts, type RetryingHost } from '../db/find-retrying-hosts';
import { findTopFailingHosts, type FailingHost } from '../db/find-top-failing-hosts';
import { sumJobCounts, type CallbackQueues } from '../queue/shards';

export interface Stats {
  /** Ready: exact up to READY_COUNT_CAP; delivered, failed, other: the planner's estimates (count-orders.ts). */
  orders: Omit<OrderCounts, 'oldestReadyAgeSeconds'>;
  /** The number to watch: how long the longest-waiting ready order has waited. */
  oldestReadyAgeSeconds: number | null;
  recent: RecentOutcomes;
  /** Orders at 5 whose last attempt comes within the next hour: they end 7 if it fails too. */
  lastAttemptWithinHour: number;
  /** More due orders than LAST_ATTEMPTS_SCAN_CAP: lastAttemptWithinHour counts the soonest of them only. */
  lastAttemptWithinHourAtLeast: boolean;
  /** Jobs in Redis, all shards together. */
  queue: QueueDepths;
  /** Jobs in each shard's queue, by queue name; only with more than one shard (QUEUE_SHARDS). */
  shards?: Record<string, QueueDepths>;
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

const depthsOf = (jobs: Record<string, number>): QueueDepths => ({
  waiting: jobs.waiting ?? 0,
  active: jobs.active ?? 0,
  delayed: jobs.delayed ?? 0,
  prioritized: jobs.prioritized ?? 0,
});

/** How far back `stats --minutes` may look (a year): keeps Postgres' interval arithmetic in range. */
export const MAX_STATS_MINUTES = 525_600;

export async function collectStats(db: Db, queues: Pick<CallbackQueues, 'jobCountsByShard'>, maxAttempts: number, windowMinutes = 15): Promise<Stats> {
  const [{ oldestReadyAgeSeconds, oldestReadySince: _, ...orders }, lastAttempts, recent, byShard, topFailingHosts, retryingHosts] = await Promise.all([
    countOrders(db),
    countLastAttemptsDue(db, maxAttempts, 60),
    countRecentOutcomes(db, windowMinutes),
    queues.jobCountsByShard('waiting', 'active', 'delayed', 'prioritized'),
    findTopFailingHosts(db, 10),
    findRetryingHosts(db, windowMinutes, 10),
  ]);
  return {
    orders,
    oldestReadyAgeSeconds,
    recent,
    lastAttemptWithinHour: lastAttempts.count,
    lastAttemptWithinHourAtLeast: lastAttempts.atLeast,
    queue: depthsOf(sumJobCounts([...byShard.values()])),
    ...(byShard.size > 1 && { shards: Object.fromEntries([...byShard].map(([name, jobs]) => [name, depthsOf(jobs)])) }),
    topFailingHosts,
    retryingHosts,
  };
}

export function formatStats(stats: Stats, queueName: string): string {
  const { orders, queue, recent } = stats;
  const age = stats.oldestReadyAgeSeconds === null ? '-' : `${stats.oldestReadyAgeSeconds}s`;
  const estimate = (n: number | null) => (n === null ? '- (not analyzed yet)' : `~${n}`);
  const lines = [
    'orders (~: the planner\'s estimate)',
    `  ready (5)      ${stats.orders.readyAtLeast ? '>= ' : ''}${orders.ready}`,
    `  delivered (6)  ${estimate(orders.delivered)}`,
    `  failed (7)     ${estimate(orders.failed)}`,
    `  other          ${estimate(orders.other)}`,
    `  oldest ready   ${age}`,
    `  last try < 1h  ${stats.lastAttemptWithinHourAtLeast ? '>= ' : ''}${stats.lastAttemptWithinHour}`,
    `last ${recent.windowMinutes} minutes`,
    `  delivered      ${recent.delivered}`,
    `  retried        ${recent.retried}`,
    `  failed         ${recent.failed}`,
    stats.shards ? `queue ${queueName}, ${Object.keys(stats.shards).length} shards` : `queue ${queueName}`,
    `  waiting        ${queue.waiting}`,
    `  active         ${queue.active}`,
    `  delayed        ${queue.delayed}`,
    `  prioritized    ${queue.prioritized}`,
  ];
  for (const [name, depths] of Object.entries(stats.shards ?? {})) {
    lines.push(`  ${name}: ${depths.waiting} waiting, ${depths.active} active, ${depths.delayed} delayed, ${depths.prioritized} prioritized`);
  }
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
