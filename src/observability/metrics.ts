import type { Queue } from 'bullmq';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from '../db/connection';
import { countOrders, type OrderCounts } from '../db/count-orders';
import type { AttemptObservation, DeliveryResult } from '../delivery/deliver-order';
import type { CallbackJobData } from '../queue/callback-queue';

/** Scrapes come often and from several places; the order counts are a table scan. Reuse them this long. */
const ORDER_COUNTS_TTL_MS = 5000;

/** Metric names for the deliveries counter's outcome label; 'superseded' is the duplicate finish. */
const OUTCOME_LABEL: Record<DeliveryResult, string> = {
  delivered: 'delivered',
  retry: 'retry',
  failed: 'failed',
  released: 'released',
  skipped: 'skipped',
  superseded: 'duplicate_finish',
  deferred: 'deferred',
};

/**
 * The daemon's Prometheus metrics, in a registry of its own (so tests and embedders can make several).
 * Counters and histograms are recorded as work happens; queue depths and order counts are read from
 * Redis and Postgres when scraped.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly deliveries: Counter<'outcome'>;
  private readonly callbackSeconds: Histogram;
  private readonly readyToDeliveredSeconds: Histogram;
  private readonly attemptsPerDelivered: Histogram;
  private readonly producerRunSeconds: Histogram;
  private readonly enqueued: Counter;
  private orderCounts?: { at: number; value: Promise<OrderCounts> };

  constructor(sources: { db: Db; queue: Queue<CallbackJobData> }) {
    const registers = [this.registry];
    this.deliveries = new Counter({
      name: 'order_callbacks_deliveries_total',
      help: 'Delivery attempts by outcome: delivered, retry, failed, released (handed back by shutdown), skipped (claimed elsewhere), deferred (partner circuit open or at its cap), duplicate_finish (superseded claim)',
      labelNames: ['outcome'],
      registers,
    });
    this.callbackSeconds = new Histogram({
      name: 'order_callbacks_callback_duration_seconds',
      help: 'HTTP callback duration, connect to last byte or abort',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.readyToDeliveredSeconds = new Histogram({
      name: 'order_callbacks_ready_to_delivered_seconds',
      help: 'Time from an order becoming ready (5) to its delivery (6)',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400],
      registers,
    });
    this.attemptsPerDelivered = new Histogram({
      name: 'order_callbacks_attempts_per_delivered_order',
      help: 'Attempts it took to deliver an order',
      buckets: [1, 2, 3, 5, 10, 20, 50],
      registers,
    });
    this.producerRunSeconds = new Histogram({
      name: 'order_callbacks_producer_poll_duration_seconds',
      help: 'Duration of one producer run: lease ready orders and enqueue them',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    });
    this.enqueued = new Counter({ name: 'order_callbacks_enqueued_total', help: 'Jobs added to the queue by this producer', registers });

    const { db, queue } = sources;
    new Gauge({
      name: 'order_callbacks_queue_jobs',
      help: 'Jobs in the queue by state',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    const cachedCounts = () => this.cachedOrderCounts(db);
    new Gauge({
      name: 'order_callbacks_orders',
      help: 'Orders by status (ready = 5, delivered = 6, failed = 7)',
      labelNames: ['status'],
      registers,
      async collect() {
        const counts = await cachedCounts();
        for (const status of ['ready', 'delivered', 'failed', 'other'] as const) this.set({ status }, counts[status]);
      },
    });
    new Gauge({
      name: 'order_callbacks_oldest_ready_age_seconds',
      help: 'How long the longest-waiting ready order has waited; 0 when none is waiting',
      registers,
      async collect() {
        this.set((await cachedCounts()).oldestReadyAgeSeconds ?? 0);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'order_callbacks_' });
  }

  deliveryFinished(result: DeliveryResult): void {
    this.deliveries.inc({ outcome: OUTCOME_LABEL[result] });
  }

  /** For DeliveryDeps.observe. */
  readonly observeAttempt = (attempt: AttemptObservation): void => {
    if (attempt.httpMs !== undefined) this.callbackSeconds.observe(attempt.httpMs / 1000);
    if (attempt.result === 'delivered') {
      this.attemptsPerDelivered.observe(attempt.attempt);
      this.readyToDeliveredSeconds.observe(Math.max(0, Date.now() - attempt.readySince.getTime()) / 1000);
    }
  };

  producerRan(seconds: number, enqueued: number): void {
    this.producerRunSeconds.observe(seconds);
    this.enqueued.inc(enqueued);
  }

  private cachedOrderCounts(db: Db): Promise<OrderCounts> {
    const now = Date.now();
    if (!this.orderCounts || now - this.orderCounts.at > ORDER_COUNTS_TTL_MS) {
      const value = countOrders(db);
      // A failed read must not be served from the cache.
      value.catch(() => (this.orderCounts = undefined));
      this.orderCounts = { at: now, value };
    }
    return this.orderCounts.value;
  }
}
