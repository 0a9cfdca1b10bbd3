import type { Queue } from 'bullmq';
import type { Db } from '../db/connection';
import { countOrders, type OrderCounts } from '../db/count-orders';
import type { CallbackJobData } from '../queue/callback-queue';

export interface Stats {
  orders: Omit<OrderCounts, 'oldestReadyAgeSeconds'>;
  oldestReadyAgeSeconds: number | null;
  queue: { waiting: number; active: number; delayed: number; prioritized: number };
}

export async function collectStats(db: Db, queue: Queue<CallbackJobData>): Promise<Stats> {
  const [{ oldestReadyAgeSeconds, ...orders }, jobs] = await Promise.all([
    countOrders(db),
    queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized'),
  ]);
  return {
    orders,
    oldestReadyAgeSeconds,
    queue: {
      waiting: jobs.waiting ?? 0,
      active: jobs.active ?? 0,
      delayed: jobs.delayed ?? 0,
      prioritized: jobs.prioritized ?? 0,
    },
  };
}

export function formatStats(stats: Stats, queueName: string): string {
  const { orders, queue } = stats;
  const age = stats.oldestReadyAgeSeconds === null ? '-' : `${stats.oldestReadyAgeSeconds}s`;
  return [
    'orders',
    `  ready (5)      ${orders.ready}`,
    `  delivered (6)  ${orders.delivered}`,
    `  failed (7)     ${orders.failed}`,
    `  other          ${orders.other}`,
    `  oldest ready   ${age}`,
    `queue ${queueName}`,
    `  waiting        ${queue.waiting}`,
    `  active         ${queue.active}`,
    `  delayed        ${queue.delayed}`,
    `  prioritized    ${queue.prioritized}`,
  ].join('\n');
}
