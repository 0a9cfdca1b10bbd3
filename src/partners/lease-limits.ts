import { performance } from 'node:perf_hooks';

import type { Logger } from '../observability/logger';
import { withTimeout } from '../with-timeout';
import { type CircuitRules, clearsWindow, leaseLimit, nextState, type PartnerState } from './partner-circuit';
import type { PartnerDirectory } from './partner-directory';
import { type PartnerStore, readRequest } from './partner-store';

/** A producer reads the directory at most this often: a pause reaches every producer within about this. */
const DIRECTORY_TTL_MS = 500;
/**
 * A half-open partner's probes are leased at most this often by one producer process, counted from when
 * a run leased some: a run leases them, they are queued and admitted (or handed back when other probes
 * took the slots), and the next runs, tens of milliseconds apart, would otherwise lease and hand back
 * more of its backlog until the probes have answered, which takes up to a callback timeout. Counted from
 * the lease, not from the offer: a shard loop whose shard has none of the partner's orders must not spend
 * the allowance of the shard that has them. Shard loops whose runs overlap may each lease the probes
 * once; the gate admits no more than BREAKER_HALF_OPEN_PROBES and hands the rest back.
 */
const PROBE_LEASE_EVERY_MS = 1000;
/**
 * How often a producer checks each partner the directory lists as not closed against the partner's own
 * state: a note that was lost (a Redis blip between a transition and its note) is mended within this,
 * and a half-open partner with nothing to probe is closed (the `quiet` row).
 */
const RECONCILE_EVERY_MS = 5000;
const READ_TIMEOUT_MS = 1000;

/**
 * What a producer run may lease of each partner that is not closed (leaseLimit: 0 while held, the probes
 * while half-open, once a second: tell probesLeased), read from the directory every replica writes to,
 * plus the partners this process's workers found silent at their cap (none, then their free slots once a
 * second, until they answer). An empty map: lease as usual. Call once per run.
 */
export class LeaseLimits {
  private read?: { now: number; at: number; states: Map<string, PartnerState> };
  private reading?: Promise<void>;
  private warned = false;
  private readonly probesLeasedAt = new Map<string, number>();
  private reconciledAt = performance.now();
  private reconciling?: Promise<void>;

  constructor(
    private readonly deps: {
      shared: { store: PartnerStore; directory: PartnerDirectory };
      /** This process's own directory: used while the shared one cannot be read. */
      local: PartnerDirectory;
      rules: CircuitRules;
      logger: Logger;
      capacitySkips?: () => Map<string, number>;
    },
  ) {}

  async get(): Promise<Map<string, number>> {
    if (!this.read || performance.now() - this.read.at > DIRECTORY_TTL_MS)
      await (this.reading ??= this.refresh().finally(() => (this.reading = undefined)));
    const limits = new Map<string, number>();
    const { now, at, states } = this.read!;
    const storeNow = now + (performance.now() - at);
    for (const [origin, state] of states) {
      const limit = leaseLimit(state, storeNow, this.deps.rules);
      if (limit === undefined) continue;
      limits.set(origin, limit > 0 && this.probesLeasedRecently(origin) ? 0 : limit);
    }
    if (states.size > 0 && !this.reconciling && performance.now() - this.reconciledAt >= RECONCILE_EVERY_MS) {
      this.reconciledAt = performance.now();
      this.reconciling = this.reconcile(states).finally(() => (this.reconciling = undefined));
    }
    const capacity = this.deps.capacitySkips?.() ?? new Map<string, number>();
    for (const [origin, limit] of capacity) {
      const allowed = limit > 0 && this.probesLeasedRecently(origin) ? 0 : limit;
      limits.set(origin, Math.min(allowed, limits.get(origin) ?? allowed));
    }
    for (const origin of this.probesLeasedAt.keys()) if (!states.has(origin) && !capacity.has(origin)) this.probesLeasedAt.delete(origin);
    return limits;
  }

  /**
   * A run leased orders of these partners while they were offered a limited allowance (the probes of a
   * half-open partner, the free slots of one silent at its cap): no more for a second.
   */
  probesLeased(origins: Iterable<string>): void {
    for (const origin of origins) this.probesLeasedAt.set(origin, performance.now());
  }

  private probesLeasedRecently(origin: string): boolean {
    const last = this.probesLeasedAt.get(origin);
    return last !== undefined && performance.now() - last < PROBE_LEASE_EVERY_MS;
  }

  /**
   * Compares each partner the directory lists as not closed with its own state, in the background:
   * closes a half-open one that had nothing to probe for a while, and notes what it finds when the
   * directory is behind (a note lost to a Redis blip would otherwise stand for good).
   */
  private async reconcile(listed: Map<string, PartnerState>): Promise<void> {
    const { store, directory } = this.deps.shared;
    for (const [origin, noted] of listed) {
      try {
        const snapshot = await withTimeout(store.exchange(origin, readRequest()), READ_TIMEOUT_MS, 'partner state did not answer');
        const lastAnswerAt = Math.max(snapshot.answers.lastOkAt, snapshot.lastError?.at ?? 0);
        const to = nextState(snapshot.state, { kind: 'quiet', inFlight: snapshot.inFlight, lastAnswerAt }, snapshot.now, this.deps.rules);
        let state = snapshot.state;
        if (to) {
          const result = await withTimeout(
            store.transition(origin, snapshot.state.version, to, clearsWindow(to)),
            READ_TIMEOUT_MS,
            'partner state did not answer',
          );
          if (result.applied) this.deps.logger.info({ origin, from: 'half_open', to: to.state, reason: to.reason }, `partner ${to.state}`);
          state = result.state;
        }
        if (state.since !== noted.since || state.version !== noted.version)
          await withTimeout(directory.note(origin, state), READ_TIMEOUT_MS, 'the partner directory did not answer');
      } catch (err) {
        this.deps.logger.debug({ err, origin }, 'could not reconcile a partner with the directory; trying again later');
      }
    }
  }

  private async refresh(): Promise<void> {
    let read;
    try {
      read = await withTimeout(this.deps.shared.directory.notClosed(), READ_TIMEOUT_MS, 'the partner directory did not answer');
      this.warned = false;
    } catch (err) {
      if (!this.warned)
        this.deps.logger.warn({ err }, "could not read the partner directory; leasing with this process's own view of partners");
      this.warned = true;
      read = await this.deps.local.notClosed();
    }
    this.read = { ...read, at: performance.now() };
  }
}
