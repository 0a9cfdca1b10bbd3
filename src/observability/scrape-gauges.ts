import { Gauge, type Registry } from 'prom-client';

import type { Db } from '../db/connection';
import { READY_COUNT_CAP } from '../db/reports/order-counts';
import { readOrderGauges, type StoredOrderGauges } from '../db/reports/order-gauges';
import type { JobCounter } from '../queue/shards';
import { withTimeout } from '../with-timeout';
import { cachedFor } from './cached';
import { ORDER_GAUGES_EVERY_MS } from './refresh-order-gauges';

/** Long enough for the gauges of one scrape to share one read of order_gauges. */
const ORDER_COUNTS_TTL_MS = 1000;

/**
 * Order gauges computed longer ago than this are not shown (the replicas that compute them are gone or
 * cannot): an old oldest-ready age would keep an alert firing, or silent, on numbers nobody refreshes.
 */
export const ORDER_GAUGES_STALE_AFTER_S = (12 * ORDER_GAUGES_EVERY_MS) / 1000;

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
 * The gauges read when scraped: queue depths from Redis; orders by status and the oldest ready age from
 * order_gauges, one row in Postgres that one replica at a time recomputes (refresh-order-gauges.ts), so
 * a scrape costs a read by primary key however large orders grows. When a source does not answer, or
 * the order gauges are stale, their series are dropped (never left stale or shown as 0, which would read
 * as "nothing waiting") and order_callbacks_scrape_source_up says which source.
 */
export function registerScrapeGauges(registry: Registry, sources: { db: Db; queue: JobCounter }): void {
  const registers = [registry];
  const storedGauges: () => Promise<StoredOrderGauges | undefined> = cachedFor(ORDER_COUNTS_TTL_MS, () =>
    withTimeout(readOrderGauges(sources.db), SOURCE_TIMEOUT_MS, 'postgres did not answer'),
  );
  /** The order gauges when current; undefined when Postgres does not answer, none were computed, or they are stale. */
  const orderCounts = async (): Promise<StoredOrderGauges | undefined> => {
    const stored = await storedGauges().catch(() => undefined);
    return stored && stored.computedSecondsAgo <= ORDER_GAUGES_STALE_AFTER_S ? stored : undefined;
  };
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
    help:
      `Orders by status: ready (5) counted up to ${READY_COUNT_CAP} then estimated; delivered (6), failed (7), other: ` +
      `the planner's estimates as of the last ANALYZE. Computed every ${ORDER_GAUGES_EVERY_MS / 1000} s by one replica; ` +
      'absent when Postgres does not answer or they are stale',
    labelNames: ['status'],
    registers,
    async collect() {
      this.reset();
      const counts = await orderCounts();
      if (!counts) return;
      for (const status of ORDER_STATUSES) {
        const n = counts[status];
        if (n !== null) this.set({ status }, n);
      }
    },
  });
  new Gauge({
    name: 'order_callbacks_oldest_ready_age_seconds',
    help:
      `How long the longest-waiting ready order has waited (as of the order gauges, at most ${ORDER_GAUGES_EVERY_MS / 1000} s old); ` +
      '0 when none is waiting, NaN when Postgres does not answer or the order gauges are stale',
    registers,
    async collect() {
      const counts = await orderCounts();
      this.set(counts ? (counts.oldestReadyAgeSeconds ?? 0) : Number.NaN);
    },
  });
  new Gauge({
    name: 'order_callbacks_order_gauges_age_seconds',
    help:
      `How long ago one replica last computed the order gauges (every ${ORDER_GAUGES_EVERY_MS / 1000} s; ` +
      `past ${ORDER_GAUGES_STALE_AFTER_S} s they are not shown); absent when Postgres does not answer or they were never computed`,
    registers,
    async collect() {
      this.reset();
      const stored = await storedGauges().catch(() => undefined);
      if (stored) this.set(stored.computedSecondsAgo);
    },
  });
  new Gauge({
    name: 'order_callbacks_scrape_source_up',
    help: 'Whether the scrape could read its source (postgres: the order gauges, redis: queue depths): 1 or 0',
    labelNames: ['source'],
    registers,
    async collect() {
      const up = (read: Promise<unknown>) =>
        read.then(
          () => 1,
          () => 0,
        );
      const [postgres, redis] = await Promise.all([up(storedGauges()), up(queueCounts())]);
      this.set({ source: 'postgres' }, postgres);
      this.set({ source: 'redis' }, redis);
    },
  });
}
