import type { Queue } from 'bullmq';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { Db } from '../db/connection';
import type { AttemptObservation, DeliveryResult } from '../delivery/deliver-order';
import type { CallbackJobData } from '../queue/callback-queue';
import { registerScrapeGauges } from './scrape-gauges';

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
  private readonly producerPageSeconds: Histogram;
  private readonly enqueued: Counter;
  private readonly heldBeforeQueue: Counter;

  constructor(sources: { db: Db; queue: Queue<CallbackJobData> }) {
    const registers = [this.registry];
    this.deliveries = new Counter({
      name: 'order_callbacks_deliveries_total',
      help: 'Delivery attempts by outcome: delivered, retry, failed, released (handed back by shutdown), skipped (claimed elsewhere), deferred (partner circuit open or at its cap), duplicate_finish (superseded claim)',
      labelNames: ['outcome'],
      registers,
    });
    // Every outcome from the start at 0: an alert on rate(duplicate_finish) needs the series before the first one.
    for (const outcome of new Set(Object.values(OUTCOME_LABEL))) this.deliveries.inc({ outcome }, 0);
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
    this.producerPageSeconds = new Histogram({
      name: 'order_callbacks_producer_page_duration_seconds',
      help: 'Duration of one page of the producer: the statement that leases up to PRODUCER_PAGE_SIZE ready orders',
      // Fine from 50 ms up: where a page of a big backlog lands, so "the same at the end as at the start" can be read off.
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.5, 1],
      registers,
    });
    this.enqueued = new Counter({ name: 'order_callbacks_enqueued_total', help: 'Jobs added to the queue by this producer', registers });
    this.heldBeforeQueue = new Counter({
      name: 'order_callbacks_held_before_queue_total',
      help: "Orders this producer deferred instead of queuing, because this process's workers hold their partner (circuit open, at its cap and not answering, rate limit used up)",
      registers,
    });

    registerScrapeGauges(this.registry, sources);
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

  /** For EnqueueDeps.observePage: a page that costs more as the backlog drains means the keyset broke. */
  readonly producerPageRead = (seconds: number): void => {
    this.producerPageSeconds.observe(seconds);
  };

  producerRan(seconds: number, enqueued: number, heldBeforeQueue = 0): void {
    this.producerRunSeconds.observe(seconds);
    this.heldBeforeQueue.inc(heldBeforeQueue);
    this.enqueued.inc(enqueued);
  }
}
