import type { PartnerOutcome } from './partner-outcome';
import type { ExchangeRequest, OutcomeCounts, Snapshot } from './partner-store';

/** What a want is answered with: a slot id when granted, and the partner as the exchange left it. */
export interface WantAnswer {
  grantedId?: string;
  snapshot?: Snapshot;
  /** The version and probe flag the slot was granted under. */
  version: number;
  probe: boolean;
}

/** What a flush asks for new slots with: decided from the cached state at the moment of the flush. */
export interface WantTerms {
  version: number;
  notBefore: number;
  limit: number;
  probe: boolean;
}

interface Want {
  id: string;
  resolve: (answer: WantAnswer) => void;
}

/** Most slots asked for in one exchange: keeps a script's arguments small. */
const MAX_WANTS_PER_EXCHANGE = 256;

/**
 * One partner's pending business in this process, sent as one exchange at a time: what attempts
 * submit while an exchange is on the wire goes in the next one, so a busy partner costs one round trip
 * per batch rather than two per callback.
 */
export class PartnerLine {
  private release: string[] = [];
  private renew: string[] = [];
  private outcomes: OutcomeCounts = { attempts: 0, failures: 0, healthy: 0, healthyMs: 0 };
  private probes = new Map<number, { ok: number; failed: number }>();
  private retryAfter?: { pauseMs: number; status: number };
  private wants: Want[] = [];
  private inFlight = false;
  private scheduled = false;
  private changeWaiters: (() => void)[] = [];
  /** Since when exchanges have found the partner at its cap (store clock); undefined when not. */
  atCapSince?: number;
  /** Until when the producer should lease none of its orders: silent at its cap (store clock). */
  skipUntil = 0;
  /**
   * Since when this process has found the partner silent at its cap, with no healthy answer since (store
   * clock); undefined when not. Once skipUntil has passed, the producer leases only its free slots
   * (leaseWhileSilent).
   */
  silentSince?: number;
  /** The last state version this process wrote to the directory (or saw written). */
  notedVersion = -1;
  lastUsed = 0;
  /** The store the last exchange went to: atCapSince, skipUntil and silentSince are on its clock. */
  store?: unknown;
  /** When this process last told the directory it has seen this partner (performance.now()). */
  seenReportedAt = -Infinity;

  constructor(
    readonly origin: string,
    private readonly send: (
      line: PartnerLine,
      request: ExchangeRequest,
      terms: WantTerms | undefined,
      retryAfter: PartnerLine['retryAfter'],
    ) => Promise<Snapshot>,
    private readonly terms: () => WantTerms | undefined,
  ) {}

  want(id: string): Promise<WantAnswer> {
    return new Promise((resolve) => {
      this.wants.push({ id, resolve });
      this.schedule();
    });
  }

  settle(slotId: string | undefined, outcome: PartnerOutcome, probeVersion: number | undefined): void {
    if (slotId) this.release.push(slotId);
    if (outcome.kind !== 'not_counted') {
      if (outcome.firstAttempt) this.outcomes.attempts += 1;
      if (outcome.kind === 'failed') {
        if (outcome.firstAttempt) this.outcomes.failures += 1;
        this.outcomes.lastError = outcome.error;
        if (outcome.retryAfter && outcome.retryAfter.pauseMs > (this.retryAfter?.pauseMs ?? -1)) this.retryAfter = outcome.retryAfter;
      } else {
        this.outcomes.healthy += 1;
        this.outcomes.healthyMs += outcome.answerMs;
      }
      if (probeVersion !== undefined) {
        const tally = this.probes.get(probeVersion) ?? { ok: 0, failed: 0 };
        if (outcome.kind === 'failed') tally.failed += 1;
        else tally.ok += 1;
        this.probes.set(probeVersion, tally);
      }
    }
    this.wake();
    this.schedule();
  }

  renewSlots(ids: string[]): void {
    this.renew.push(...ids);
    this.schedule();
  }

  /** An exchange with nothing in it: refreshes the cached state. */
  refresh(): void {
    if (!this.inFlight) this.schedule(true); // one on the wire refreshes it anyway
  }

  /** Resolves when a slot is freed in this process, or after `ms`: time for a waiter to ask again. */
  nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.changeWaiters.push(done);
    });
  }

  private wake(): void {
    const waiters = this.changeWaiters;
    this.changeWaiters = [];
    for (const waiter of waiters) waiter();
  }

  private pendingWork(): boolean {
    const o = this.outcomes;
    return (
      this.release.length > 0 ||
      this.renew.length > 0 ||
      o.attempts > 0 ||
      o.healthy > 0 ||
      o.lastError !== undefined ||
      this.probes.size > 0 ||
      this.wants.length > 0 ||
      this.retryAfter !== undefined
    );
  }

  private forced = false;

  private schedule(force = false): void {
    this.forced ||= force;
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    // setImmediate: gathers what this tick submitted without adding a delay.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.inFlight || (!this.pendingWork() && !this.forced)) return;
    this.forced = false;
    this.inFlight = true;
    let wants: Want[] = [];
    let terms: WantTerms | undefined;
    let snapshot: Snapshot | undefined;
    try {
      wants = this.wants.splice(0, MAX_WANTS_PER_EXCHANGE);
      terms = wants.length > 0 ? this.terms() : undefined;
      // The newest half-open's probes: answers to an older version's probes can change nothing now.
      const newest = Math.max(-1, ...this.probes.keys());
      const probes = this.probes.get(newest) ?? { ok: 0, failed: 0 };
      const request: ExchangeRequest = {
        release: this.release,
        renew: this.renew,
        outcomes: this.outcomes,
        probes: { version: newest, ...probes },
        want: terms
          ? { ids: wants.map((w) => w.id), version: terms.version, notBefore: terms.notBefore, limit: terms.limit }
          : { ids: [], version: -1, notBefore: 0, limit: 0 },
      };
      const retryAfter = this.retryAfter;
      this.release = [];
      this.renew = [];
      this.outcomes = { attempts: 0, failures: 0, healthy: 0, healthyMs: 0 };
      this.probes = new Map();
      this.retryAfter = undefined;
      snapshot = await this.send(this, request, terms, retryAfter);
    } catch {
      // send falls back to the local store, which cannot fail; should it all the same, the wants go
      // unanswered (their orders are handed back shortly) rather than the process crashing.
    } finally {
      // Every want is answered: a failed exchange grants nothing.
      const granted = snapshot?.granted ?? 0;
      wants.forEach((w, i) =>
        w.resolve({ grantedId: i < granted ? w.id : undefined, snapshot, version: terms?.version ?? -1, probe: terms?.probe ?? false }),
      );
      this.inFlight = false;
      if (this.pendingWork()) this.schedule();
    }
  }
}
