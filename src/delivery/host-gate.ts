/**
 * Keeps one broken partner from taking the workers from everyone else. Per host, in this process:
 * a cap on callbacks in flight, and a circuit breaker. After `failureThreshold` failures in a row
 * (timeouts, network errors, 5xx, 408/425/429) the host is *open*: its orders are deferred without a
 * request, and without counting an attempt, until the cooldown ends; then one probe is let through
 * (half-open). A success closes it; a failure opens it again for twice as long, up to the maximum.
 * A Retry-After on 429/503 pauses the host for that long. Once the circuit is open, a failure of a
 * callback sent before it opened (Retry-After and all) changes nothing; a success still closes it.
 * Pure: time is passed in.
 */
export interface HostGateOptions {
  maxInFlightPerHost: number;
  failureThreshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
  /**
   * The callback timeout: a partner at its cap that is not answering frees no slot before one of its
   * callbacks times out, so its next orders wait that long instead of coming straight back.
   */
  callbackTimeoutMs: number;
}

/** `probe`: this callback is the one probe of a half-open circuit, and settle() must be told so. */
export interface Admitted {
  admitted: true;
  probe?: true;
}

export type Admission = Admitted | Refusal;

export interface Refusal {
  admitted: false;
  until: number;
  reason: string;
  /**
   * Refused only because the partner is at its cap while answering well: a slot will free up within
   * moments, so waiting for it in the process beats handing the order back through Postgres.
   */
  waitable?: boolean;
  /**
   * This refusal found the partner at its cap and silent (no useful answer for a callback timeout):
   * the caller should hold back all its ready orders until `until`, not only this one.
   */
  holdPartner?: boolean;
  /**
   * The end of a circuit opened by failures, when the refusal is for that circuit: one order goes then,
   * as the probe, the one the backlog's deferral left due at exactly this time (settleGate). `until` is
   * later, with the rest of the backlog; a deferral leaves an order already due at `circuitEnd` as it
   * is, or the probe would go with the rest.
   */
  circuitEnd?: number;
  /**
   * Refused only because this process is at the partner's cap, and the partner answers (slowly): it
   * has answered before and is not silent now. Another replica may have room for its orders, so this
   * is no reason to keep them out of the queue that all replicas share.
   */
  answering?: boolean;
}

interface HostState {
  inFlight: number;
  failures: number;
  openUntil: number;
  cooldownMs: number;
  probing: boolean;
  /** When the probe out now will have answered or timed out. */
  probeUntil: number;
  /** When the partner last answered a callback usefully; -Infinity before the first answer. */
  lastAnsweredAt: number;
  /** How long its useful answers take, smoothed (ms); -1 before the first. */
  answerMs: number;
  /** Until when it is held as silent at its cap (see Admission.holdPartner). */
  silentUntil: number;
  /** Since when it has had callbacks in flight without a break. */
  busySince: number;
}

/**
 * After a circuit opened by failures, the partner's orders other than the probe come due this long after
 * the circuit's end: its callback timeout, plus time for the producer to queue the probe (its next run:
 * POLL_INTERVAL_MS, a second by default, behind whatever is queued). At most a minute past the timeout's
 * part, so that a long CALLBACK_TIMEOUT_MS does not keep a recovered partner's backlog that long; a probe
 * still out then hands the orders back until it ends (probing).
 */
function restAfterProbeMs(callbackTimeoutMs: number): number {
  return Math.min(callbackTimeoutMs, 60_000) + 3_000;
}

/** How long an order waits when its host is at the in-flight cap but answering: a slot frees up soon. */
const BUSY_DEFER_MS = 500;

/**
 * A partner counts as answering well, so that waiting for one of its slots is worth it, when it
 * answered usefully within the last second and its answers take at most QUICK_ANSWER_MS: then its
 * slots turn over within moments. A slow partner's orders go back to Postgres instead of holding
 * workers while they wait.
 */
const ANSWERING_WITHIN_MS = 1000;
const QUICK_ANSWER_MS = 250;
/** A partner at its cap that has not answered usefully for this long while busy counts as silent (at least). */
const SILENT_AFTER_MS = 1000;
/** Weight of the newest answer in answerMs. */
const ANSWER_SMOOTHING = 0.2;

export class HostGate {
  private readonly hosts = new Map<string, HostState>();

  constructor(private readonly options: HostGateOptions) {}

  /**
   * Why the partner's orders should not even be claimed now, or undefined: its circuit is open (or
   * paused, or a probe is out), or it is at its cap without answering well, so no slot will free up
   * soon. The same decision admit() makes, minus the refusals worth waiting out.
   */
  holdUntil(host: string, now: number): Refusal | undefined {
    const state = this.hosts.get(host);
    if (!state) return undefined;
    const refusal = this.refusal(host, state, now);
    return refusal?.waitable ? undefined : refusal;
  }

  /** May a callback to `host` start now? If so, it counts as in flight until settle() is called. */
  admit(host: string, now: number): Admission {
    const state = this.stateOf(host);
    const refusal = this.refusal(host, state, now);
    if (refusal) return refusal;
    if (state.inFlight === 0) state.busySince = now;
    state.inFlight += 1;
    if (state.failures < this.options.failureThreshold) return { admitted: true };
    state.probing = true;
    state.probeUntil = now + this.options.callbackTimeoutMs;
    return { admitted: true, probe: true };
  }

  private refusal(host: string, state: HostState, now: number): Refusal | undefined {
    const halfOpen = state.failures >= this.options.failureThreshold;
    if (state.openUntil > now) {
      // When a circuit opened by failures ends, one order goes as the probe: the one the backlog's
      // deferral left due then (settleGate). Any other order refused meanwhile (queued, retried or come
      // to 5 while the circuit was open) waits with the backlog for the probe's answer: due with the
      // probe, they were all queued and claimed at once, and all but one handed back again.
      const reason = `circuit open for ${host}`;
      if (!halfOpen) return { admitted: false, until: state.openUntil, reason };
      return { admitted: false, until: state.openUntil + restAfterProbeMs(this.options.callbackTimeoutMs), circuitEnd: state.openUntil, reason };
    }
    // Until the probe is known to have ended, not a moment: orders handed back every half second came
    // round again and again while a dead partner's probe waited out its timeout, each time a lease and a
    // deferral of every order of its backlog that had come due (BENCHMARKS.md, 2026-11-28).
    if (halfOpen && state.probing) {
      return { admitted: false, until: Math.max(now + BUSY_DEFER_MS, state.probeUntil), reason: `probing ${host}` };
    }
    if (state.inFlight < this.options.maxInFlightPerHost) return undefined;
    const { until, waitable, silent } = this.whenBusy(state, now);
    // Held once per silent spell: the first refusal to find it silent asks for the whole backlog.
    const holdPartner = silent && state.silentUntil <= now;
    if (holdPartner) state.silentUntil = until;
    const answering = !silent && state.answerMs >= 0;
    return { admitted: false, until, reason: `${state.inFlight} callbacks in flight to ${host}`, waitable, holdPartner, answering };
  }

  /**
   * Whether the host's circuit is open for its failures, so that one probe goes out when it ends (and
   * not merely paused by a Retry-After, after which everything may go).
   */
  probeFollows(host: string): boolean {
    const state = this.hosts.get(host);
    return state !== undefined && state.failures >= this.options.failureThreshold;
  }

  /**
   * How long after a hold's end the rest of the host's backlog should come due: restAfterProbeMs when
   * a probe goes out then (probeFollows), else 0 (a Retry-After pause: everything may go at its end).
   */
  backlogAfterHoldMs(host: string): number {
    return this.probeFollows(host) ? restAfterProbeMs(this.options.callbackTimeoutMs) : 0;
  }

  /**
   * The admitted callback ended. `failed`: the host did not answer usefully. `probe`: admit() said it
   * was the probe. Only the probe's end ends the probing: a callback sent before the circuit opened can
   * end while the probe is out (when the cooldown is shorter than the callback timeout), and must neither
   * let a second probe through nor count as the probe, nor keep the circuit open for longer. Returns the
   * time the host is held until when this call began the hold: it opened the circuit, or a Retry-After
   * paused a host that was not held (so the caller can defer the host's other orders).
   */
  settle(
    host: string,
    outcome: { failed: boolean; pauseMs?: number; durationMs?: number } | 'aborted',
    now: number,
    probe = false,
  ): number | undefined {
    const state = this.stateOf(host);
    state.inFlight = Math.max(0, state.inFlight - 1);
    if (probe) state.probing = false;
    if (outcome === 'aborted') return undefined;
    if (!outcome.failed) {
      state.lastAnsweredAt = now;
      const durationMs = outcome.durationMs ?? 0;
      state.answerMs = state.answerMs < 0 ? durationMs : state.answerMs + ANSWER_SMOOTHING * (durationMs - state.answerMs);
      state.failures = 0;
      state.cooldownMs = this.options.cooldownMs;
      return undefined;
    }
    // Once the circuit is open, every callback admitted is a probe: any other failure is of a callback
    // sent before it opened, and tells nothing new, nor does its Retry-After (the probe's answer will).
    // It must not move the circuit's end (the order left due then to be the probe would be handed back
    // with the rest, and a probe that succeeds would find the partner still held), nor hold the backlog
    // again: a partner that stopped answering with its whole cap in flight had its backlog deferred once
    // per callback that timed out.
    const stale = !probe && state.failures >= this.options.failureThreshold;
    state.failures += 1;
    if (stale) return undefined;
    // A Retry-After that finds the partner already paused extends the pause but asks for nothing more:
    // the backlog was deferred when the pause began, and whatever comes due before its new end is handed
    // back by holdUntil. A partner answering 503 to its whole cap in flight once had its backlog
    // rewritten once per answer, each a few milliseconds later than the last.
    const heldBefore = state.openUntil > now;
    if (outcome.pauseMs !== undefined && outcome.pauseMs > 0) {
      state.openUntil = Math.max(state.openUntil, now + Math.min(outcome.pauseMs, this.options.maxCooldownMs));
    }
    if (state.failures < this.options.failureThreshold) return !heldBefore && state.openUntil > now ? state.openUntil : undefined;
    if (probe) state.cooldownMs = Math.min(state.cooldownMs * 2, this.options.maxCooldownMs);
    state.openUntil = Math.max(state.openUntil, now + state.cooldownMs);
    return state.openUntil;
  }

  /**
   * A partner at its cap: when a slot should free up. Answering well: at once (waitable). Answering,
   * but slowly, or not yet: after about one of its answer times. Silent (busy without one useful answer
   * for SILENT_AFTER_MS, or twice its usual answer time if longer, but never past a callback timeout):
   * not before one of its callbacks times out.
   */
  private whenBusy(state: HostState, now: number): { until: number; waitable: boolean; silent: boolean } {
    const sinceAnswer = now - state.lastAnsweredAt;
    if (sinceAnswer <= ANSWERING_WITHIN_MS && state.answerMs <= QUICK_ANSWER_MS) {
      return { until: now + BUSY_DEFER_MS, waitable: true, silent: false };
    }
    const timeoutMs = this.options.callbackTimeoutMs;
    const silentFor = now - Math.max(state.lastAnsweredAt, state.busySince);
    // A slow but healthy partner (answers in 2 s) must not count as silent after 1 s of waiting.
    const silentAfterMs = Math.min(timeoutMs, Math.max(SILENT_AFTER_MS, 2 * state.answerMs));
    if (silentFor >= silentAfterMs) return { until: now + timeoutMs, waitable: false, silent: true };
    return { until: now + Math.min(timeoutMs, Math.max(BUSY_DEFER_MS, state.answerMs)), waitable: false, silent: false };
  }

  private stateOf(host: string): HostState {
    let state = this.hosts.get(host);
    if (!state) {
      state = { inFlight: 0, failures: 0, openUntil: 0, cooldownMs: this.options.cooldownMs, probing: false, probeUntil: 0, lastAnsweredAt: -Infinity, answerMs: -1, silentUntil: 0, busySince: 0 };
      this.hosts.set(host, state);
    }
    return state;
  }
}
