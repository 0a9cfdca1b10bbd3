import type { PartnerState } from './partner-circuit';
import { monotonicEpochMs } from './partner-directory';
import {
  type ExchangeRequest,
  type PartnerStore,
  type Snapshot,
  stateFromHash,
  stateToHash,
  type StoreTimings,
  type TransitionResult,
} from './partner-store';

interface LocalPartner {
  hash: Record<string, string>;
  /** Slot id -> lease end. */
  slots: Map<string, number>;
  /** Bucket -> [attempts, failures]. */
  window: Map<number, [number, number]>;
}

/**
 * The store's contract kept in this process: what a replica falls back to when Redis cannot be asked,
 * so that it goes on delivering with per-process limits (the cap counts only this process's callbacks,
 * and what it learns of a partner stays here). The same rules as RedisPartnerStore, on a clock of the
 * process that never steps back.
 */
export class LocalPartnerStore implements PartnerStore {
  readonly shared = false;
  private readonly partners = new Map<string, LocalPartner>();

  constructor(
    private readonly timings: StoreTimings,
    private readonly defaultCooldownMs: number,
    private readonly clock: () => number = monotonicEpochMs,
  ) {}

  async ping(): Promise<void> {}

  async exchange(origin: string, r: ExchangeRequest): Promise<Snapshot> {
    const now = this.clock();
    const p = this.partner(origin);
    const leaseEnd = now + this.timings.slotLeaseMs;
    for (const id of r.release) p.slots.delete(id);
    for (const id of r.renew) if (p.slots.has(id)) p.slots.set(id, leaseEnd);
    for (const [id, end] of p.slots) if (end <= now) p.slots.delete(id);

    const { bucketMs, windowMs } = this.timings;
    const o = r.outcomes;
    if (o.attempts > 0) {
      const bucket = Math.floor(now / bucketMs);
      const counts = p.window.get(bucket) ?? [0, 0];
      p.window.set(bucket, [counts[0] + o.attempts, counts[1] + o.failures]);
    }
    const oldest = Math.floor((now - windowMs) / bucketMs);
    let attempts = 0;
    let failures = 0;
    for (const [bucket, [a, f]] of p.window) {
      if (bucket < oldest) p.window.delete(bucket);
      else {
        attempts += a;
        failures += f;
      }
    }
    if (o.healthy > 0) {
      const sample = o.healthyMs / o.healthy;
      const before = p.hash.answerMs === undefined ? undefined : Number(p.hash.answerMs);
      p.hash.answerMs = String(Math.floor(before === undefined ? sample : before + 0.2 * (sample - before)));
      p.hash.lastOkAt = String(now);
    }
    if (o.lastError) Object.assign(p.hash, { lastError: o.lastError.slice(0, 300), lastErrorAt: String(now) });

    const version = Number(p.hash.version ?? 0);
    if (r.probes.version === version) {
      p.hash.probesOk = String(Number(p.hash.probesOk ?? 0) + r.probes.ok);
      p.hash.probesFailed = String(Number(p.hash.probesFailed ?? 0) + r.probes.failed);
    }
    let granted = 0;
    if (r.want.ids.length > 0 && r.want.version === version && now >= r.want.notBefore) {
      granted = Math.max(0, Math.min(r.want.ids.length, r.want.limit - p.slots.size));
      for (const id of r.want.ids.slice(0, granted)) p.slots.set(id, leaseEnd);
    }
    const parsed = stateFromHash(p.hash, this.defaultCooldownMs);
    return {
      now,
      granted,
      inFlight: p.slots.size,
      state: parsed.state,
      tallies: { attempts, failures, ...parsed.tallies },
      answers: parsed.answers,
      lastError: parsed.lastError,
    };
  }

  async transition(origin: string, expectedVersion: number, to: PartnerState, clearWindow: boolean): Promise<TransitionResult> {
    const now = this.clock();
    const p = this.partner(origin);
    const version = Number(p.hash.version ?? 0);
    if (version !== expectedVersion) return { applied: false, now, state: stateFromHash(p.hash, this.defaultCooldownMs).state };
    const untilAt = to.until > 0 ? now + Math.max(1, to.until - to.since) : 0;
    Object.assign(p.hash, stateToHash(to), {
      version: String(version + 1),
      since: String(now),
      until: String(untilAt),
      probesOk: '0',
      probesFailed: '0',
    });
    if (clearWindow) p.window.clear();
    return { applied: true, now, state: stateFromHash(p.hash, this.defaultCooldownMs).state };
  }

  private partner(origin: string): LocalPartner {
    let p = this.partners.get(origin);
    if (!p) {
      p = { hash: {}, slots: new Map(), window: new Map() };
      this.partners.set(origin, p);
    }
    return p;
  }
}
