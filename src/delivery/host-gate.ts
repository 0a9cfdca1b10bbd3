/**
 * Keeps one broken partner from taking the workers from everyone else. Per host, in this process:
 * a cap on callbacks in flight, and a circuit breaker. After `failureThreshold` failures in a row
 * (timeouts, network errors, 5xx, 408/425/429) the host is *open*: its orders are deferred without a
 * request, and without counting an attempt, until the cooldown ends; then one probe is let through
 * (half-open). A success closes it; a failure opens it again for twice as long, up to the maximum.
 * A Retry-After on 429/503 pauses the host for that long. Pure: time is passed in.
 */
export interface HostGateOptions {
  maxInFlightPerHost: number;
  failureThreshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
}

export type Admission = { admitted: true } | { admitted: false; until: number; reason: string };

interface HostState {
  inFlight: number;
  failures: number;
  openUntil: number;
  cooldownMs: number;
  probing: boolean;
}

/** How long an order waits when its host is at the in-flight cap: short, the cap frees up quickly. */
const BUSY_DEFER_MS = 500;

export class HostGate {
  private readonly hosts = new Map<string, HostState>();

  constructor(private readonly options: HostGateOptions) {}

  /** Until when the partner's circuit is open (or paused), or undefined when it is not. */
  openUntil(host: string, now: number): number | undefined {
    const until = this.hosts.get(host)?.openUntil ?? 0;
    return until > now ? until : undefined;
  }

  /** May a callback to `host` start now? If so, it counts as in flight until settle() is called. */
  admit(host: string, now: number): Admission {
    const state = this.stateOf(host);
    if (state.openUntil > now) return { admitted: false, until: state.openUntil, reason: `circuit open for ${host}` };
    const halfOpen = state.failures >= this.options.failureThreshold;
    if (halfOpen && state.probing) return { admitted: false, until: now + BUSY_DEFER_MS, reason: `probing ${host}` };
    if (state.inFlight >= this.options.maxInFlightPerHost) {
      return { admitted: false, until: now + BUSY_DEFER_MS, reason: `${state.inFlight} callbacks in flight to ${host}` };
    }
    state.inFlight += 1;
    if (halfOpen) state.probing = true;
    return { admitted: true };
  }

  /**
   * The admitted callback ended. `failed`: the host did not answer usefully. Returns the time the
   * circuit opened until, when this call opened it (so the caller can defer the host's other orders).
   */
  settle(host: string, outcome: { failed: boolean; pauseMs?: number } | 'aborted', now: number): number | undefined {
    const state = this.stateOf(host);
    state.inFlight = Math.max(0, state.inFlight - 1);
    const wasProbe = state.probing;
    state.probing = false;
    if (outcome === 'aborted') return undefined;
    if (outcome.pauseMs !== undefined && outcome.pauseMs > 0) {
      state.openUntil = Math.max(state.openUntil, now + Math.min(outcome.pauseMs, this.options.maxCooldownMs));
    }
    if (!outcome.failed) {
      state.failures = 0;
      state.cooldownMs = this.options.cooldownMs;
      return undefined;
    }
    state.failures += 1;
    if (state.failures < this.options.failureThreshold) return outcome.pauseMs ? state.openUntil : undefined;
    if (wasProbe) state.cooldownMs = Math.min(state.cooldownMs * 2, this.options.maxCooldownMs);
    state.openUntil = Math.max(state.openUntil, now + state.cooldownMs);
    return state.openUntil;
  }

  private stateOf(host: string): HostState {
    let state = this.hosts.get(host);
    if (!state) {
      state = { inFlight: 0, failures: 0, openUntil: 0, cooldownMs: this.options.cooldownMs, probing: false };
      this.hosts.set(host, state);
    }
    return state;
  }
}
