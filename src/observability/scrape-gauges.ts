import type { JobCounter } from '../queue/shards';
import { Gauge, type Registry } from 'prom-client';
import type { Db } from '../db/connection';
import { countOrders, type OrderCounts } from '../db/count-orders';
import { withTimeout } from '../with-timeout';
import { cachedFor } from './cached';

/** Scrapes come often and from several places; the order counts are a table scan. Reuse them this long. */
const ORDER_COUNTS_TTL_MS = 5000;

/** Long enough for the gauges of one scrape to share one read of the queue. */
const QUEUE_COUNTS_TTL_MS = 1000;

/**
 * A scrape must answer while Postgres or Redis does not (BullMQ's connection waits for Redis forever):
 * the process metrics and the counters are what an operator needs then. Each read gives up after this.
 */
const SOURCE_TIMEOUT_MS = 2000;

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized'] as const;
const ORDER_STATUSES = ['ready', 'delivered', 'failed', 'other'] as const;

/**
 * The gauges read when scraped: queue depths from Redis, orders by status and the oldest ready age
 * from Postgres. When a source does not answer, its series are dropped (never left stale or shown
 * as 0, which would read as "nothing waiting") and order_callbacks_scrape_source_up says which.
 */
export function registerScrapeGauges(registry: Registry, sources: { db: Db; queue: JobCounter }): void {
  const registers = [registry];
  const orderCounts: () => Promise<OrderCounts> = cachedFor(ORDER_COUNTS_TTL_MS, () =>
    withTimeout(countOrders(sources.db), SOURCE_TIMEOUT_MS, 'postgres did not answer'),
  );
  const queueCounts = cachedFor(QUEUE_COUNTS_TTL_MS, () =>
    withTimeout(sources.queue.getJobCounts(...QUEUE_STATES), SOURCE_TIMEOUT_MS, 'redis did not answer'),
  );

  new Gauge({
    name: 'order_callbacks_queue_jobs',
    help: 'Jobs in the queue by state (bounded by MAX_QUEUED_JOBS); absent when Redis does not answer',
    labelNames: ['state'],
    registers,
    async collect() {
      const counts = await queueCounts().catch(() => undefined);
      if (!counts) return this.reset();
      for (const state of QUEUE_STATES) this.set({ state }, counts[state] ?? 0);
    },
  });
  new Gauge({
    name: 'order_callbacks_orders',
    help: 'Orders by status (ready = 5, delivered = 6, failed = 7), cached 5 s; absent when Postgres does not answer',
    labelNames: ['status'],
    registers,
    async collect() {
      const counts = await orderCounts().catch(() => undefined);
      if (!counts) return this.reset();
      for (const status of ORDER_STATUSES) this.set({ status }, counts[status]);
    },
  });
  new Gauge({
    name: 'order_callbacks_oldest_ready_age_seconds',
    help: 'How long the longest-waiting ready order has waited; 0 when none is waiting, NaN when Postgres does not answer',
    registers,
    async collect() {
      const counts = await orderCounts().catch(() => undefined);
      this.set(counts ? (counts.oldestReadyAgeSeconds ?? 0) : Number.NaN);
    },
  });
  new Gauge({
    name: 'order_callbacks_scrape_source_up',
    help: 'Whether the scrape could read its source (postgres: order counts, redis: queue depths): 1 or 0',
    labelNames: ['source'],
    registers,
    async collect() {
      const up = (read: Promise<unknown>) => read.then(() => 1, () => 0);
      const [postgres, redis] = await Promise.all([up(orderCounts()), up(queueCounts())]);
      this.set({ source: 'postgres' }, postgres);
      this.set({ source: 'redis' }, redis);
    },
  });
}
