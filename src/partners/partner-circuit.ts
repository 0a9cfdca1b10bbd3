/**
 * The partner's state machine: one per partner origin (scheme, host, port), shared by every replica
 * (PartnerStore keeps it). Pure: time is passed in, on the store's clock (Redis'). docs/partners.md has
 * the same table in prose; its unit tests are this table's rows.
 *
 * A partner is held only when it fails as a whole (the trip rule: a failure *rate* over a window, with a
 * minimum volume), never because some of its orders fail: answers about one order (most 4xx) count as
 * signs of life. After a cooldown a few probes go out (half-open); several healthy answers close it,
 * several failures open it again for twice as long.
 */

export type CircuitState = 'closed' | 'open' | 'half_open' | 'paused' | 'held';

export interface PartnerState {
  state: CircuitState;
  /** Bumped by every transition: a transition applies only to the version it was decided on. */
  version: number;
  /** When the partner entered this state (ms, store clock). */
  since: number;
  /** When a timed state ends (open, paused, held for a while); 0: no end. */
  until: number;
  /** How long the next opening lasts: BREAKER_COOLDOWN_MS, doubled by each failed half-open. */
  cooldownMs: number;
  /** Why it is in this state, for people. */
  reason: string;
  /** Who held it by hand. */
  actor?: string;
}

export interface CircuitRules {
  /** Trip when at least this share of the window's attempts failed (BREAKER_FAILURE_RATE)... */
  failureRate: number;
  /** ...and the window holds at least this many attempts (BREAKER_MIN_ATTEMPTS). */
  minAttempts: number;
  /** How far back the window reaches (BREAKER_WINDOW_MS). */
  windowMs: number;
  cooldownMs: number;
  maxCooldownMs: number;
  /**
   * Half-open: at most this many probes in flight; this many healthy answers close the circuit, this
   * many failures open it again, when they are at least `failureRate` of its probes
   * (BREAKER_HALF_OPEN_PROBES).
   */
  probes: number;
  /** A Retry-After pauses the partner for at most this long (RETRY_MAX_MS). */
  maxPauseMs: number;
  /** Callbacks in flight to the partner across all replicas while closed (HOST_MAX_IN_FLIGHT). */
  maxInFlight: number;
}

/**
 * Orders' first attempts and their failures recorded in the window (PartnerOutcome says why first
 * attempts only), and the probe answers of the current half-open (every attempt).
 */
export interface Tallies {
  attempts: number;
  failures: number;
  probesOk: number;
  probesFailed: number;
}

export type CircuitEvent =
  /** Outcomes were recorded; the tallies are the store's after recording them. */
  | { kind: 'outcomes'; tallies: Tallies }
  /** The partner answered 429 or 503 with a Retry-After. */
  | { kind: 'retry_after'; pauseMs: number; status: number }
  /** An operator holds the partner: `until` 0 for as long as it takes. */
  | { kind: 'operator_pause'; until: number; actor: string; reason: string }
  | { kind: 'operator_resume'; actor: string }
  /** Time passed (evaluated whenever the state is read). */
  | { kind: 'time' }
  /**
   * A periodic look at a partner that is not closed (the producer's reconciler): its callbacks in flight,
   * and when it last answered anything at all (0: never).
   */
  | { kind: 'quiet'; inFlight: number; lastAnswerAt: number };

export type EventKind = CircuitEvent['kind'];

interface Context<E extends CircuitEvent = CircuitEvent> {
  state: PartnerState;
  event: E;
  now: number;
  rules: CircuitRules;
}

/** One row of the table: in these states, on this event, when the guard holds, go there. */
export interface Transition {
  from: CircuitState[];
  on: EventKind;
  /** In words, for docs/partners.md and the tests' names. */
  when: string;
  guard: (c: Context) => boolean;
  to: CircuitState;
  /** The new state's fields besides `state` and `version`. */
  enter: (c: Context) => Pick<PartnerState, 'until' | 'cooldownMs' | 'reason'> & { actor?: string };
}

const tripped = (c: Context) => {
  const { attempts, failures } = tallies(c);
  return attempts >= c.rules.minAttempts && failures >= c.rules.failureRate * attempts;
};
const tallies = (c: Context) => (c.event as Extract<CircuitEvent, { kind: 'outcomes' }>).tallies;
const pauseEnd = ({ event, now, rules }: Context) =>
  now + Math.min((event as Extract<CircuitEvent, { kind: 'retry_after' }>).pauseMs, rules.maxPauseMs);
const ended = ({ state, now }: Context) => state.until > 0 && state.until <= now;
const doubled = ({ state, rules }: Context) => Math.min(state.cooldownMs * 2, rules.maxCooldownMs);
const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * A half-open partner that nobody has probed for this long has no orders to probe: it closes, rather
 * than keep the producer reading partner by partner for a partner with nothing to send. If it is still
 * down, its next orders open it again.
 */
export const HALF_OPEN_QUIET_MS = 60_000;

/**
 * The whole policy. The first row that matches the state, the event and its guard applies; no row: no
 * change. A new case is a new row.
 */
export const TRANSITIONS: readonly Transition[] = [
  {
    from: ['closed'],
    on: 'outcomes',
    when: "at least BREAKER_FAILURE_RATE of at least BREAKER_MIN_ATTEMPTS orders' first attempts in the window failed",
    guard: tripped,
    to: 'open',
    enter: (c) => {
      const { attempts, failures } = tallies(c);
      return {
        until: c.now + c.rules.cooldownMs,
        cooldownMs: c.rules.cooldownMs,
        reason: `${failures} of ${attempts} first attempts failed within ${seconds(c.rules.windowMs)}`,
      };
    },
  },
  {
    from: ['half_open'],
    on: 'outcomes',
    when: 'BREAKER_HALF_OPEN_PROBES probes answered healthily',
    guard: (c) => tallies(c).probesOk >= c.rules.probes,
    to: 'closed',
    enter: (c) => ({ until: 0, cooldownMs: c.rules.cooldownMs, reason: `${tallies(c).probesOk} probes answered` }),
  },
  {
    from: ['half_open'],
    on: 'outcomes',
    when: 'BREAKER_HALF_OPEN_PROBES probes failed, and at least BREAKER_FAILURE_RATE of its probes',
    guard: (c) => {
      const { probesOk, probesFailed } = tallies(c);
      return probesFailed >= c.rules.probes && probesFailed >= c.rules.failureRate * (probesOk + probesFailed);
    },
    to: 'open',
    enter: (c) => ({ until: c.now + doubled(c), cooldownMs: doubled(c), reason: `${tallies(c).probesFailed} probes failed` }),
  },
  {
    from: ['closed', 'half_open'],
    on: 'retry_after',
    when: 'a 429 or 503 came with Retry-After',
    guard: () => true,
    to: 'paused',
    enter: (c) => ({
      until: pauseEnd(c),
      cooldownMs: c.state.cooldownMs,
      reason: `HTTP ${(c.event as { status: number }).status} with Retry-After`,
    }),
  },
  {
    from: ['paused'],
    on: 'retry_after',
    when: 'a Retry-After that ends later than the pause',
    guard: (c) => pauseEnd(c) > c.state.until,
    to: 'paused',
    enter: (c) => ({ until: pauseEnd(c), cooldownMs: c.state.cooldownMs, reason: c.state.reason }),
  },
  {
    from: ['open', 'paused', 'held'],
    on: 'time',
    when: 'its end has come',
    guard: ended,
    to: 'half_open',
    enter: (c) => ({ until: 0, cooldownMs: c.state.cooldownMs, reason: `${c.state.state} ended` }),
  },
  {
    from: ['half_open'],
    on: 'quiet',
    when: 'no probe in flight, and no answer for HALF_OPEN_QUIET_MS since it became half-open',
    guard: (c) => {
      const e = c.event as Extract<CircuitEvent, { kind: 'quiet' }>;
      return e.inFlight === 0 && c.now - Math.max(c.state.since, e.lastAnswerAt) >= HALF_OPEN_QUIET_MS;
    },
    to: 'closed',
    enter: (c) => ({ until: 0, cooldownMs: c.rules.cooldownMs, reason: 'no orders to probe' }),
  },
  {
    from: ['closed', 'open', 'half_open', 'paused', 'held'],
    on: 'operator_pause',
    when: 'an operator pauses it',
    guard: () => true,
    to: 'held',
    enter: (c) => {
      const e = c.event as Extract<CircuitEvent, { kind: 'operator_pause' }>;
      return { until: e.until, cooldownMs: c.state.cooldownMs, reason: e.reason, actor: e.actor };
    },
  },
  {
    from: ['open', 'half_open', 'paused', 'held'],
    on: 'operator_resume',
    when: 'an operator resumes it',
    guard: () => true,
    to: 'closed',
    enter: (c) => ({ until: 0, cooldownMs: c.rules.cooldownMs, reason: 'resumed by hand', actor: (c.event as { actor: string }).actor }),
  },
];

/** Where `state` goes on `event` at `now`, or undefined when it stays as it is. */
export function nextState(state: PartnerState, event: CircuitEvent, now: number, rules: CircuitRules): PartnerState | undefined {
  const current = event.kind === 'time' ? state : effectiveState(state, now, rules);
  const context = { state: current, event, now, rules };
  const row = TRANSITIONS.find((t) => t.on === event.kind && t.from.includes(current.state) && t.guard(context));
  if (!row) return undefined;
  return { state: row.to, version: state.version + 1, since: now, ...row.enter(context) };
}

/**
 * The state as it stands at `now`: a timed state whose end has come is half-open, since that end. The
 * store keeps the timed state until the next transition is written; the version stays, so probes
 * admitted meanwhile count for this half-open.
 */
export function effectiveState(state: PartnerState, now: number, rules: CircuitRules): PartnerState {
  const next = nextState(state, { kind: 'time' }, now, rules);
  return next ? { ...next, version: state.version, since: state.until } : state;
}

/** Whether a transition must clear the outcome window: a closed circuit starts counting afresh. */
export function clearsWindow(to: PartnerState): boolean {
  return to.state === 'closed';
}

export type Admission = { send: true; limit: number; probe: boolean } | { send: false; until: number; reason: string };

/** How long an order refused by an untimed hold (held by hand) waits before it is looked at again. */
export const UNTIMED_HOLD_RECHECK_MS = 5000;

/**
 * May callbacks go to the partner now, and how many at once across all replicas. Held partners' orders
 * are not even leased by the producer (leaseLimit); one that reaches a worker anyway waits until the
 * hold's end.
 */
export function admission(state: PartnerState, now: number, rules: CircuitRules): Admission {
  const s = effectiveState(state, now, rules);
  switch (s.state) {
    case 'closed':
      return { send: true, limit: rules.maxInFlight, probe: false };
    case 'half_open':
      return { send: true, limit: Math.min(rules.probes, rules.maxInFlight), probe: true };
    default:
      return { send: false, until: s.until > 0 ? s.until : now + UNTIMED_HOLD_RECHECK_MS, reason: `${s.state}: ${s.reason}` };
  }
}

/**
 * How many of the partner's orders a producer run may lease: none while it is held (its backlog stays
 * where it is, untouched), the probes while half-open, and no limit of its own while closed.
 */
export function leaseLimit(state: PartnerState, now: number, rules: CircuitRules): number | undefined {
  const a = admission(state, now, rules);
  if (!a.send) return 0;
  return a.probe ? a.limit : undefined;
}

export const CLOSED: PartnerState = Object.freeze({ state: 'closed', version: 0, since: 0, until: 0, cooldownMs: 0, reason: '' });

/** The store's state of a partner it has never seen. */
export function initialState(rules: Pick<CircuitRules, 'cooldownMs'>): PartnerState {
  return { ...CLOSED, cooldownMs: rules.cooldownMs };
}
