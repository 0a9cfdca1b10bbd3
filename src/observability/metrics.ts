import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { Db } from '../db/connection';
import type { AttemptObservation, DeliveryResult } from '../delivery/deliver-order';
import type { CircuitRules, CircuitState } from '../partners/partner-circuit';
import type { PartnerDirectory } from '../partners/partner-directory';
import type { PartnerGateObserver } from '../partners/partner-gate';
import type { JobCounter } from '../queue/shards';
import { registerPartnerGauges } from './partner-gauges';
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
 * The holds a daemon opens: a circuit opened for failures, a pause for a Retry-After. (Holds by hand
 * are opened by the CLI, and recorded in partner_audit.)
 */
const HOLD_STATES = ['open', 'paused'] as const;

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
  private readonly partnerHolds: Counter<'state'>;
  private readonly partnerStateShared: Gauge;

  constructor(sources: { db: Db; queue: JobCounter; partners: PartnerDirectory; partnerRules: CircuitRules; partnersTopK?: number }) {
    const registers = [this.registry];
    this.deliveries = new Counter({
      name: 'order_callbacks_deliveries_total',
      help:
        'Delivery attempts by outcome: delivered, retry, failed, released (handed back by shutdown), skipped (claimed elsewhere), ' +
        'deferred (partner held, at its cap or over its rate limit), duplicate_finish (superseded claim)',
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
    this.partnerHolds = new Counter({
      name: 'order_callbacks_partner_holds_total',
      help:
        'Holds this process opened: a circuit opened for failures (open), a pause for a Retry-After (paused); ' +
        'a pause extended is not a new hold',
      labelNames: ['state'],
      registers,
    });
    for (const state of HOLD_STATES) this.partnerHolds.inc({ state }, 0);
    this.partnerStateShared = new Gauge({
      name: 'order_callbacks_partner_state_shared',
      help: 'Whether partner state (cap, circuit) is shared through Redis (1) or kept per process because Redis could not be asked (0)',
      registers,
    });
    this.partnerStateShared.set(1);

    registerScrapeGauges(this.registry, sources);
    registerPartnerGauges(this.registry, sources.partners, sources.partnerRules, sources.partnersTopK ?? 10);
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
      this.readyToDeliveredSeconds.observe(Math.max(0, attempt.readyForMs) / 1000);
    }
  };

  /** For EnqueueDeps.observePage: a page that costs more as the backlog drains means the keyset broke. */
  readonly producerPageRead = (seconds: number): void => {
    this.producerPageSeconds.observe(seconds);
  };

  producerRan(seconds: number, enqueued: number): void {
    this.producerRunSeconds.observe(seconds);
    this.enqueued.inc(enqueued);
  }

  /** For PartnerGate: transitions this process wrote, and whether partner state is shared. */
  readonly partnerObserver: PartnerGateObserver = {
    transition: (_origin: string, from: CircuitState, to: CircuitState) => {
      if (from !== to && (HOLD_STATES as readonly string[]).includes(to)) this.partnerHolds.inc({ state: to });
    },
    shared: (shared: boolean) => this.partnerStateShared.set(shared ? 1 : 0),
  };
}
