import type { AnswerStats } from './partner-capacity';
import type { PartnerState, Tallies } from './partner-circuit';

/**
 * Where a partner's state, its slots (callbacks in flight) and its recent outcomes live. RedisPartnerStore
 * shares them between every replica; LocalPartnerStore keeps them in the process, for when Redis cannot
 * be asked. Both keep the same contract (test/integration/partner-store.test.ts runs it against both).
 * Times are on the store's clock (Redis'): every answer says what it is now.
 */
export interface PartnerStore {
  /** True when every replica sees the same state and slots. */
  readonly shared: boolean;
  /**
   * One round trip for everything a process has for the partner: frees slots, renews the leases of
   * slots still in use, records outcomes, and asks for new slots. Answers the state after all of it.
   */
  exchange(origin: string, request: ExchangeRequest): Promise<Snapshot>;
  /** Answers when the store can be asked (the gate's way back from the local store). */
  ping(): Promise<void>;
  /** Writes `to` if the partner's state is still at `expectedVersion`; answers the state either way. */
  transition(origin: string, expectedVersion: number, to: PartnerState, clearWindow: boolean): Promise<TransitionResult>;
}

export interface ExchangeRequest {
  /** Slots to free: their callbacks ended. Unknown or expired ones are ignored. */
  release: string[];
  /** Slots still in use, whose leases must not run out. */
  renew: string[];
  /** Outcomes since the last exchange, for the window. */
  outcomes: OutcomeCounts;
  /** Answers of probes admitted under state version `version`: counted only while it is still current. */
  probes: { version: number; ok: number; failed: number };
  /**
   * New slots, one per id: granted (the first `granted` ids) only while the state is at `version`, its
   * clock has reached `notBefore`, and fewer than `limit` slots are taken.
   */
  want: { ids: string[]; version: number; notBefore: number; limit: number };
}

export interface OutcomeCounts {
  /** For the window (the trip rule): orders' first attempts, and those of them that failed. */
  attempts: number;
  failures: number;
  /** Healthy answers (to any attempt) and their total time, for AnswerStats. */
  healthy: number;
  healthyMs: number;
  /** The newest failure's message, kept as the partner's last error. */
  lastError?: string;
}

export interface Snapshot {
  /** The store's clock. */
  now: number;
  granted: number;
  /** Slots taken across all replicas (after this exchange). */
  inFlight: number;
  /** As stored: a timed state that has ended is still shown until the next transition (effectiveState). */
  state: PartnerState;
  tallies: Tallies;
  answers: AnswerStats;
  lastError?: { message: string; at: number };
}

export interface TransitionResult {
  applied: boolean;
  now: number;
  state: PartnerState;
}

export const NO_OUTCOMES: OutcomeCounts = Object.freeze({ attempts: 0, failures: 0, healthy: 0, healthyMs: 0 });

/** An exchange that changes nothing: reads the partner. */
export function readRequest(): ExchangeRequest {
  return {
    release: [],
    renew: [],
    outcomes: NO_OUTCOMES,
    probes: { version: -1, ok: 0, failed: 0 },
    want: { ids: [], version: -1, notBefore: 0, limit: 0 },
  };
}

/** How the stores bucket and keep things; the same for both. */
export interface StoreTimings {
  /** A slot's lease: a replica that dies (or freezes) with slots gives them back after this. */
  slotLeaseMs: number;
  /** The outcome window (BREAKER_WINDOW_MS) and its bucket size. */
  windowMs: number;
  bucketMs: number;
  /** How long a closed partner's state is kept after its last exchange. */
  keepMs: number;
}

/** The window is kept in about ten buckets: old outcomes leave it a bucket at a time. */
export function storeTimings(windowMs: number): StoreTimings {
  return { slotLeaseMs: SLOT_LEASE_MS, windowMs, bucketMs: Math.max(100, Math.ceil(windowMs / 10)), keepMs: KEEP_CLOSED_MS };
}

/**
 * A slot's lease. Short, so that a crashed replica's slots come back within seconds; its holder renews
 * it every SLOT_RENEW_MS while the callback runs (a callback may take CALLBACK_TIMEOUT_MS).
 */
export const SLOT_LEASE_MS = 3000;
export const SLOT_RENEW_MS = 1000;
const KEEP_CLOSED_MS = 7 * 86_400_000;

/** Parses a state hash as both stores keep it (string fields). */
export function stateFromHash(
  hash: Record<string, string>,
  defaultCooldownMs: number,
): { state: PartnerState; tallies: Pick<Tallies, 'probesOk' | 'probesFailed'>; answers: AnswerStats; lastError?: Snapshot['lastError'] } {
  const num = (key: string, fallback = 0) => (hash[key] === undefined || hash[key] === '' ? fallback : Number(hash[key]));
  const state: PartnerState = {
    state: (hash.state as PartnerState['state']) || 'closed',
    version: num('version'),
    since: num('since'),
    until: num('until'),
    cooldownMs: num('cooldownMs', defaultCooldownMs),
    reason: hash.reason ?? '',
    ...(hash.actor ? { actor: hash.actor } : {}),
  };
  return {
    state,
    tallies: { probesOk: num('probesOk'), probesFailed: num('probesFailed') },
    answers: { lastOkAt: num('lastOkAt'), answerMs: num('answerMs') },
    lastError: hash.lastError ? { message: hash.lastError, at: num('lastErrorAt') } : undefined,
  };
}

/** The fields a transition writes, as strings. */
export function stateToHash(state: PartnerState): Record<string, string> {
  return {
    state: state.state,
    until: String(state.until),
    cooldownMs: String(state.cooldownMs),
    reason: state.reason,
    actor: state.actor ?? '',
  };
}
