import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import type { Logger } from '../observability/logger';
import { withTimeout } from '../with-timeout';
import { atCap, atCapSince, leaseWhileSilent, SLOT_WAIT_MS } from './partner-capacity';
import {
  admission,
  type CircuitEvent,
  type CircuitRules,
  type CircuitState,
  clearsWindow,
  effectiveState,
  nextState,
  type PartnerState,
} from './partner-circuit';
import type { PartnerDirectory } from './partner-directory';
import { PartnerLine, type WantTerms } from './partner-line';
import type { PartnerOutcome } from './partner-outcome';
import { type ExchangeRequest, type PartnerStore, readRequest, SLOT_RENEW_MS, type Snapshot } from './partner-store';

/** A place in a partner's cap, held while one callback is in flight. */
export interface Slot {
  id: string;
  origin: string;
  /** The state version it was granted under: a probe's answer counts for that half-open only. */
  version: number;
  probe: boolean;
  store: PartnerStore;
  renewedAt: number;
}

export type GateAdmission = { admitted: true; slot: Slot } | { admitted: false; delayMs: number; reason: string };

/** An order to hand back without claiming it: its partner is held, or silent at its cap. */
export interface Hold {
  delayMs: number;
  reason: string;
}

export interface PartnerGateObserver {
  /** A transition this process wrote. */
  transition(origin: string, from: CircuitState, to: CircuitState): void;
  /** Whether partner state is shared through Redis right now, or kept in this process. */
  shared(shared: boolean): void;
}

export interface PartnerGateDeps {
  /** Shared through Redis; its local twin is used while Redis cannot be asked. */
  shared: { store: PartnerStore; directory: PartnerDirectory };
  local: { store: PartnerStore; directory: PartnerDirectory };
  rules: CircuitRules;
  callbackTimeoutMs: number;
  workerId: string;
  logger: Logger;
}

/** A cached state older than this is refreshed (in the background) before it is relied on again. */
const STATE_TTL_MS = 500;
/** A Redis round trip for partner state that takes longer counts as Redis being unavailable. */
const EXCHANGE_TIMEOUT_MS = 1000;
/** While on the local store, Redis is asked again this often (in the background). */
const RETRY_SHARED_MS = 5000;
/** How often a waiter at a partner's cap asks again for a slot another replica may have freed. */
const POLL_AT_CAP_MS = 50;
/** How often this process tells the directory which partners it has seen. */
const SEEN_EVERY_MS = 30_000;
/** A partner unused this long is forgotten by this process (its state stays in the store). */
const IDLE_FORGET_MS = 10 * 60_000;

interface Cached {
  snapshot: Snapshot;
  store: PartnerStore;
  /** performance.now() when it arrived: the store's clock is estimated from it, monotonically. */
  at: number;
}

/**
 * Partner protection in this process, wired to the shared store: decides with the pure tables
 * (partner-circuit, partner-capacity) on the store's state and clock, takes and gives back slots in
 * batched exchanges (PartnerLine), and writes transitions. Falls back to per-process state (the local
 * store) when Redis cannot be asked, and goes back to Redis once it answers.
 */
export class PartnerGate {
  private readonly lines = new Map<string, PartnerLine>();
  private readonly cache = new Map<string, Cached>();
  private readonly slots = new Map<string, Slot>();
  private readonly storeOf = new WeakMap<Snapshot, PartnerStore>();
  private readonly slotPrefix = `${randomBytes(4).toString('hex')}`;
  private nextSlot = 0;
  private degradedAt?: number;
  private degradedReason?: string;
  private readonly timer: NodeJS.Timeout;
  private observer?: PartnerGateObserver;
  private probing?: Promise<void>;

  constructor(private readonly deps: PartnerGateDeps) {
    // Twice per renewal period: a slot is renewed at most 1.5 periods after its last renewal, well
    // within its lease (SLOT_LEASE_MS is three periods), even with a busy event loop.
    this.timer = setInterval(() => this.tick(), SLOT_RENEW_MS / 2);
    this.timer.unref();
  }

  /** Tells `observer` (metrics) of transitions and of whether state is shared, from now on. */
  observe(observer: PartnerGateObserver | undefined): void {
    this.observer = observer;
    observer?.shared(this.degradedAt === undefined);
  }

  /** Why partner state is per process right now (Redis could not be asked), or undefined when shared. */
  degraded(): string | undefined {
    return this.degradedAt === undefined ? undefined : this.degradedReason;
  }

  /**
   * Before the claim: whether the order should be handed back untouched, from what this process knows
   * (refreshed in the background when older than STATE_TTL_MS). Undefined when unknown: admit() decides.
   */
  holdBeforeClaim(origin: string): Hold | undefined {
    const cached = this.fresh(origin);
    if (!cached) return undefined;
    const now = this.storeNow(cached);
    const a = admission(cached.snapshot.state, now, this.deps.rules);
    if (!a.send) return { delayMs: a.until - now, reason: a.reason };
    const skipUntil = this.lines.get(origin)?.skipUntil ?? 0;
    if (skipUntil > now) return { delayMs: skipUntil - now, reason: 'silent at its cap' };
    return undefined;
  }

  /** Takes a slot for one callback to `origin`, waiting briefly at the cap when that is worth it. */
  async admit(origin: string, shutdown: AbortSignal): Promise<GateAdmission> {
    const line = this.line(origin);
    const startedAt = performance.now();
    // Asks past SLOT_WAIT_MS when the partner was not at its cap: the last ask was made under a state
    // or a store that had changed (Redis failing over to the local store), not refused for room.
    let asksPastTheWait = 2;
    for (;;) {
      const cached = this.fresh(origin);
      if (cached) {
        const now = this.storeNow(cached);
        const a = admission(cached.snapshot.state, now, this.deps.rules);
        if (!a.send) return { admitted: false, delayMs: a.until - now, reason: a.reason };
      }
      const answer = await line.want(`${this.deps.workerId}:${this.slotPrefix}:${this.nextSlot++}`);
      const { snapshot } = answer;
      if (!snapshot) return { admitted: false, delayMs: 1000, reason: 'partner state could not be read' };
      const store = this.storeOf.get(snapshot)!;
      if (answer.grantedId) {
        const slot: Slot = {
          id: answer.grantedId,
          origin,
          version: answer.version,
          probe: answer.probe,
          store,
          renewedAt: performance.now(),
        };
        this.slots.set(slot.id, slot);
        return { admitted: true, slot };
      }
      if (shutdown.aborted) return { admitted: false, delayMs: 0, reason: 'shutting down' };
      const now = snapshot.now;
      const a = admission(snapshot.state, now, this.deps.rules);
      if (!a.send) return { admitted: false, delayMs: a.until - now, reason: a.reason };
      const left = SLOT_WAIT_MS - (performance.now() - startedAt);
      if (snapshot.inFlight < a.limit) {
        if (left > 0 || asksPastTheWait-- > 0) continue;
        return { admitted: false, delayMs: 500, reason: `no slot granted (${snapshot.inFlight} in flight)` };
      }
      const decision = atCap({
        answers: snapshot.answers,
        atCapSince: line.atCapSince ?? now,
        now,
        callbackTimeoutMs: this.deps.callbackTimeoutMs,
      });
      if (decision.kind === 'hand_back') {
        if (decision.skipInProducer) {
          line.skipUntil = Math.max(line.skipUntil, decision.until);
          line.silentSince ??= now;
        }
        return { admitted: false, delayMs: decision.until - now, reason: `${decision.reason} (${snapshot.inFlight} in flight)` };
      }
      if (left <= 0) return { admitted: false, delayMs: 500, reason: `at its cap (${snapshot.inFlight} in flight)` };
      await line.nextChange(Math.min(left, POLL_AT_CAP_MS));
    }
  }

  /** The callback of `slot` ended: frees the slot and records what it said about the partner. */
  settle(slot: Slot, outcome: PartnerOutcome): void {
    this.slots.delete(slot.id);
    // A slot of the other store is not there to free (it runs out by itself), and its probe's answer
    // is for a half-open spell of that store's.
    const sameStore = slot.store === this.current();
    this.line(slot.origin).settle(sameStore ? slot.id : undefined, outcome, slot.probe && sameStore ? slot.version : undefined);
  }

  /**
   * What a producer run may lease of the partners this process found silent at their cap
   * (leaseWhileSilent): none until their hand-back ends, then their free slots, until they answer
   * healthily again or the spell ends. origin -> orders.
   */
  capacitySkips(): Map<string, number> {
    const skips = new Map<string, number>();
    for (const [origin, line] of this.lines) {
      if (line.silentSince === undefined) continue;
      const cached = this.cache.get(origin);
      if (!cached || cached.store !== this.current()) continue;
      // The free slots are read from the partner's state: refreshed in the background when stale, and
      // without counting as a use of the partner (an idle one is still forgotten).
      if (performance.now() - cached.at > STATE_TTL_MS) line.refresh();
      const now = this.storeNow(cached);
      const a = admission(cached.snapshot.state, now, this.deps.rules);
      // Held: the directory's limit applies, and the store's hold decides when it ends.
      if (!a.send) continue;
      const lease = leaseWhileSilent({
        silentSince: line.silentSince,
        skipUntil: line.skipUntil,
        lastOkAt: cached.snapshot.answers.lastOkAt,
        inFlight: cached.snapshot.inFlight,
        limit: a.limit,
        now,
        callbackTimeoutMs: this.deps.callbackTimeoutMs,
      });
      if (lease === 'over') endSilence(line);
      else skips.set(origin, lease);
    }
    return skips;
  }

  /** Stops the background renewals; slots still held run out by themselves. */
  stop(): void {
    clearInterval(this.timer);
  }

  private line(origin: string): PartnerLine {
    let line = this.lines.get(origin);
    if (!line) {
      line = new PartnerLine(
        origin,
        (l, request, terms, retryAfter) => this.send(l, request, terms, retryAfter),
        () => this.terms(origin),
      );
      this.lines.set(origin, line);
    }
    line.lastUsed = performance.now();
    return line;
  }

  /** The cached state of `origin` from the store in use, refreshed in the background when stale. */
  private fresh(origin: string): Cached | undefined {
    const cached = this.cache.get(origin);
    if (!cached || cached.store !== this.current()) return undefined;
    if (performance.now() - cached.at > STATE_TTL_MS) this.line(origin).refresh();
    return cached;
  }

  private storeNow(cached: Cached): number {
    return cached.snapshot.now + (performance.now() - cached.at);
  }

  /** What a flush asks new slots under, from the cached state; undefined: ask for the state first. */
  private terms(origin: string): WantTerms | undefined {
    const cached = this.fresh(origin);
    if (!cached) return undefined;
    const stored = cached.snapshot.state;
    const a = admission(stored, this.storeNow(cached), this.deps.rules);
    if (!a.send) return undefined;
    // A timed hold that has ended is half-open only once the store's clock agrees.
    const notBefore = stored.state === 'closed' || stored.state === 'half_open' ? 0 : stored.until;
    return { version: stored.version, notBefore, limit: a.limit, probe: a.probe };
  }

  /** The local store while Redis cannot be asked (tick() asks it again in the background), else Redis. */
  private current(): PartnerStore {
    return this.degradedAt === undefined ? this.deps.shared.store : this.deps.local.store;
  }

  private directory(store: PartnerStore): PartnerDirectory {
    return store === this.deps.shared.store ? this.deps.shared.directory : this.deps.local.directory;
  }

  private async send(
    line: PartnerLine,
    request: ExchangeRequest,
    terms: WantTerms | undefined,
    retryAfter?: { pauseMs: number; status: number },
  ): Promise<Snapshot> {
    let store = this.current();
    let snapshot: Snapshot;
    try {
      if (store === this.deps.local.store) await this.seedLocal(line.origin);
      snapshot = await this.call(store, () => store.exchange(line.origin, request));
    } catch {
      // Its slots there run out by themselves; its outcomes count here. Its wants were asked under
      // Redis' state and probes answered for Redis' half-open: here they get nothing, and the waiters ask
      // again under this store's own state, which starts from what Redis last said.
      store = this.deps.local.store;
      await this.seedLocal(line.origin);
      snapshot = await store.exchange(line.origin, {
        ...request,
        release: [],
        renew: [],
        probes: { version: -1, ok: 0, failed: 0 },
        want: { ...request.want, version: -1 },
      });
    }
    if (line.store !== store) {
      // Times kept for the partner were on the other store's clock.
      line.atCapSince = undefined;
      line.skipUntil = 0;
      line.silentSince = undefined;
      line.store = store;
    }
    this.storeOf.set(snapshot, store);
    this.cache.set(line.origin, { snapshot, store, at: performance.now() });
    // It answered since it was found silent: its orders are leased and admitted as usual again, and a
    // later silence starts a spell of its own.
    if (line.silentSince !== undefined && snapshot.answers.lastOkAt > line.silentSince) endSilence(line);
    if (terms)
      line.atCapSince = atCapSince(
        line.atCapSince,
        { inFlight: snapshot.inFlight, limit: terms.limit, granted: snapshot.granted },
        snapshot.now,
      );
    await this.afterExchange(
      line,
      snapshot,
      store,
      request.outcomes.attempts > 0 || request.probes.ok + request.probes.failed > 0,
      retryAfter,
    );
    return snapshot;
  }

  /** A Redis call, bounded; a failure switches this process to the local store until Redis answers. */
  private async call<T>(store: PartnerStore, run: () => Promise<T>): Promise<T> {
    if (store !== this.deps.shared.store) return run();
    try {
      return await withTimeout(run(), EXCHANGE_TIMEOUT_MS, `Redis did not answer within ${EXCHANGE_TIMEOUT_MS} ms`);
    } catch (err) {
      if (this.degradedAt === undefined) {
        this.deps.logger.error({ err }, 'partner state cannot be shared through Redis: per-process partner limits until it answers');
        this.observer?.shared(false);
        this.degradedAt = performance.now();
        this.degradedReason = `partner state per process: Redis unavailable (${(err as Error).message})`;
      }
      throw err;
    }
  }

  /** While on the local store: asks Redis again, off the callbacks' path, and goes back to it when it answers. */
  private async probeShared(): Promise<void> {
    try {
      await withTimeout(this.deps.shared.store.ping(), EXCHANGE_TIMEOUT_MS, `Redis did not answer within ${EXCHANGE_TIMEOUT_MS} ms`);
    } catch {
      return;
    }
    if (this.degradedAt === undefined) return;
    this.degradedAt = undefined;
    this.degradedReason = undefined;
    this.deps.logger.warn('partner state is shared through Redis again');
    this.observer?.shared(true);
  }

  /**
   * Before a partner's first exchange with the local store: a hold that Redis last showed (open, paused,
   * held by hand) goes on here, for what is left of it, rather than starting over as closed.
   */
  private async seedLocal(origin: string): Promise<void> {
    const cached = this.cache.get(origin);
    if (!cached || cached.store !== this.deps.shared.store) return;
    const now = this.storeNow(cached);
    const last = effectiveState(cached.snapshot.state, now, this.deps.rules);
    if (last.state === 'closed') return;
    const local = this.deps.local.store;
    const here = await local.exchange(origin, readRequest());
    if (here.state.state !== 'closed') return;
    await local.transition(origin, here.state.version, { ...last, since: now, until: last.until > now ? last.until : 0 }, false);
  }

  /** Applies what the exchange's outcomes mean for the partner, and keeps the directory up to date. */
  private async afterExchange(
    line: PartnerLine,
    snapshot: Snapshot,
    store: PartnerStore,
    recorded: boolean,
    retryAfter?: { pauseMs: number; status: number },
  ): Promise<void> {
    const events: CircuitEvent[] = [];
    if (retryAfter) events.push({ kind: 'retry_after', ...retryAfter });
    if (recorded) events.push({ kind: 'outcomes', tallies: snapshot.tallies });
    for (const event of events) {
      const to = nextState(snapshot.state, event, snapshot.now, this.deps.rules);
      if (to) return this.apply(line, snapshot.state, to, store, snapshot.now);
    }
    if (store !== this.deps.shared.store || snapshot.state.version > line.notedVersion) this.note(line, snapshot.state, store);
  }

  /** Writes a transition decided on `from`; a replica that wrote first wins, and its state is kept. */
  private async apply(line: PartnerLine, from: PartnerState, to: PartnerState, store: PartnerStore, now: number): Promise<void> {
    let result;
    try {
      result = await this.call(store, () => store.transition(line.origin, from.version, to, clearsWindow(to)));
    } catch (err) {
      this.deps.logger.warn({ err, origin: line.origin }, 'could not write a partner transition; it is decided again on the next outcomes');
      return;
    }
    const cached = this.cache.get(line.origin);
    if (cached && cached.store === store) cached.snapshot = { ...cached.snapshot, state: result.state };
    if (result.applied) {
      const was = effectiveState(from, now, this.deps.rules).state;
      const level = to.state === 'closed' || to.state === 'half_open' ? 'info' : 'warn';
      this.deps.logger[level](
        { origin: line.origin, from: was, to: to.state, reason: to.reason, until: result.state.until || undefined },
        `partner ${to.state.replace('_', '-')}`,
      );
      this.observer?.transition(line.origin, was, to.state);
    }
    this.note(line, result.state, store);
  }

  /**
   * Writes a partner's state to the directory of its store. Counted as noted only once written: a note
   * lost to a Redis blip is tried again at the next exchange (and the producers' reconciler mends it).
   */
  private note(line: PartnerLine, state: PartnerState, store: PartnerStore): void {
    this.directory(store)
      .note(line.origin, state)
      .then(() => {
        if (store === this.deps.shared.store) line.notedVersion = Math.max(line.notedVersion, state.version);
      })
      .catch((err) => this.deps.logger.warn({ err, origin: line.origin }, 'could not update the partner directory'));
  }

  /** Renews the leases of slots still in use; reports partners seen; forgets idle ones. */
  private tick(): void {
    const now = performance.now();
    if (this.degradedAt !== undefined && now - this.degradedAt >= RETRY_SHARED_MS && !this.probing) {
      this.degradedAt = now; // the next try, RETRY_SHARED_MS from this one
      this.probing = this.probeShared().finally(() => (this.probing = undefined));
    }
    const renew = new Map<string, string[]>();
    const store = this.current();
    for (const slot of this.slots.values()) {
      if (slot.store !== store || now - slot.renewedAt < SLOT_RENEW_MS) continue;
      slot.renewedAt = now;
      renew.set(slot.origin, [...(renew.get(slot.origin) ?? []), slot.id]);
    }
    for (const [origin, ids] of renew) this.line(origin).renewSlots(ids);
    // A partner new to this process is reported at once, then at most every SEEN_EVERY_MS while used.
    const seen = [...this.lines.values()].filter((l) => l.lastUsed > l.seenReportedAt && now - l.seenReportedAt >= SEEN_EVERY_MS);
    for (const line of seen) line.seenReportedAt = now;
    if (seen.length > 0) {
      this.directory(store)
        .seen(seen.map((l) => l.origin))
        .catch((err) => this.deps.logger.debug({ err }, 'could not report the partners seen'));
    }
    const held = new Set([...this.slots.values()].map((s) => s.origin));
    for (const [origin, line] of this.lines) {
      if (now - line.lastUsed > IDLE_FORGET_MS && !held.has(origin)) {
        this.lines.delete(origin);
        this.cache.delete(origin);
      }
    }
  }
}

/** A silent spell is over: the partner's orders are leased, and admitted, as usual again. */
function endSilence(line: PartnerLine): void {
  line.silentSince = undefined;
  line.skipUntil = 0;
}
