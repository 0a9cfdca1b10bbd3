import { performance } from 'node:perf_hooks';
import type { Logger } from '../observability/logger';
import { withTimeout } from '../with-timeout';
import { leaseLimit, type CircuitRules, type PartnerState } from './partner-circuit';
import type { PartnerDirectory } from './partner-directory';

/** A producer reads the directory at most this often: a pause reaches every producer within about this. */
const DIRECTORY_TTL_MS = 500;
/**
 * A half-open partner's probes are leased at most this often by one producer: a run leases them, they
 * are queued and admitted (or handed back when other replicas' probes took the slots), and the next runs,
 * tens of milliseconds apart, would otherwise lease and hand back more of its backlog until the probes
 * have answered, which takes up to a callback timeout.
 */
const PROBE_LEASE_EVERY_MS = 1000;
const READ_TIMEOUT_MS = 1000;

/**
 * What a producer run may lease of each partner that is not closed (leaseLimit: 0 while held, the probes
 * while half-open, once a second), read from the directory every replica writes to, plus the partners
 * this process's workers found silent at their cap. An empty map: lease as usual. Call once per run.
 */
export class LeaseLimits {
  private read?: { now: number; at: number; states: Map<string, PartnerState> };
  private reading?: Promise<void>;
  private warned = false;
  private readonly probesLeasedAt = new Map<string, number>();

  constructor(
    private readonly deps: {
      shared: PartnerDirectory;
      /** This process's own directory: used while the shared one cannot be read. */
      local: PartnerDirectory;
      rules: CircuitRules;
      logger: Logger;
      capacitySkips?: () => Map<string, number>;
    },
  ) {}

  async get(): Promise<Map<string, number>> {
    if (!this.read || performance.now() - this.read.at > DIRECTORY_TTL_MS) await (this.reading ??= this.refresh().finally(() => (this.reading = undefined)));
    const limits = new Map<string, number>();
    const { now, at, states } = this.read!;
    const storeNow = now + (performance.now() - at);
    for (const [origin, state] of states) {
      const limit = leaseLimit(state, storeNow, this.deps.rules);
      if (limit === undefined) continue;
      limits.set(origin, limit > 0 && this.probesLeasedRecently(origin) ? 0 : limit);
    }
    for (const origin of this.probesLeasedAt.keys()) if (!states.has(origin)) this.probesLeasedAt.delete(origin);
    for (const [origin, limit] of this.deps.capacitySkips?.() ?? []) limits.set(origin, Math.min(limit, limits.get(origin) ?? limit));
    return limits;
  }

  private probesLeasedRecently(origin: string): boolean {
    const last = this.probesLeasedAt.get(origin);
    if (last !== undefined && performance.now() - last < PROBE_LEASE_EVERY_MS) return true;
    this.probesLeasedAt.set(origin, performance.now());
    return false;
  }

  private async refresh(): Promise<void> {
    let read;
    try {
      read = await withTimeout(this.deps.shared.notClosed(), READ_TIMEOUT_MS, 'the partner directory did not answer');
      this.warned = false;
    } catch (err) {
      if (!this.warned) this.deps.logger.warn({ err }, "could not read the partner directory; leasing with this process's own view of partners");
      this.warned = true;
      read = await this.deps.local.notClosed();
    }
    this.read = { ...read, at: performance.now() };
  }
}
