/**
 * What an attempt does when its partner is at its cap (HOST_MAX_IN_FLIGHT across all replicas, or the
 * probes of a half-open circuit): a table like the circuit's, pure, time passed in (store clock).
 * docs/partners.md has it in prose.
 */

/** How the partner has been answering, as the store keeps it across replicas. */
export interface AnswerStats {
  /** When it last answered healthily (a 2xx, 3xx or a 4xx about the order); 0: never. */
  lastOkAt: number;
  /** How long its healthy answers take, smoothed (ms); 0: not known yet. */
  answerMs: number;
}

export type AtCap =
  /** Its slots turn over within moments: wait in the process for one, up to SLOT_WAIT_MS. */
  | { kind: 'wait' }
  /**
   * Hand the order back until `until` without an attempt. `skipInProducer`: the partner is silent, so
   * the producer leases none of its orders until then either.
   */
  | { kind: 'hand_back'; until: number; skipInProducer: boolean; reason: string };

export interface CapacityContext {
  answers: AnswerStats;
  /** Since when this process has found the partner at its cap without a break. */
  atCapSince: number;
  now: number;
  callbackTimeoutMs: number;
}

/** How long an attempt may wait in the process for a slot of a partner that answers well. */
export const SLOT_WAIT_MS = 1000;
/** Answered healthily this recently, in at most QUICK_ANSWER_MS: its slots free up within moments. */
const ANSWERED_WITHIN_MS = 1000;
const QUICK_ANSWER_MS = 250;
/** At its cap with no healthy answer for this long (or twice its usual answer time): silent. */
const SILENT_AFTER_MS = 1000;
/** The shortest hand-back: sooner, the order would only meet the same full cap again. */
const MIN_HAND_BACK_MS = 500;

const silentAfter = (c: CapacityContext) => Math.min(c.callbackTimeoutMs, Math.max(SILENT_AFTER_MS, 2 * c.answers.answerMs));
const silentFor = (c: CapacityContext) => c.now - Math.max(c.answers.lastOkAt, c.atCapSince);

interface CapacityRow {
  when: string;
  guard: (c: CapacityContext) => boolean;
  decide: (c: CapacityContext) => AtCap;
}

/** The first row whose guard holds decides. */
export const AT_CAP: readonly CapacityRow[] = [
  {
    when: `it answered within ${ANSWERED_WITHIN_MS} ms, in at most ${QUICK_ANSWER_MS} ms`,
    guard: (c) => c.answers.lastOkAt > 0 && c.now - c.answers.lastOkAt <= ANSWERED_WITHIN_MS && c.answers.answerMs <= QUICK_ANSWER_MS,
    decide: () => ({ kind: 'wait' }),
  },
  {
    when: 'no healthy answer for a second, or twice its answer time, while at its cap',
    guard: (c) => silentFor(c) >= silentAfter(c),
    decide: (c) => ({ kind: 'hand_back', until: c.now + c.callbackTimeoutMs, skipInProducer: true, reason: 'silent at its cap' }),
  },
  {
    when: 'otherwise: it answers slowly, or has not answered yet',
    guard: () => true,
    decide: (c) => ({
      kind: 'hand_back',
      until: c.now + Math.min(c.callbackTimeoutMs, Math.max(MIN_HAND_BACK_MS, c.answers.answerMs)),
      skipInProducer: false,
      reason: 'at its cap',
    }),
  },
];

export function atCap(c: CapacityContext): AtCap {
  return AT_CAP.find((row) => row.guard(c))!.decide(c);
}

/**
 * Since when the partner has been at its cap without a break, after an exchange that asked for slots
 * (`prev`: before it; undefined: not at its cap). A slot granted means one was free: a spell at the cap
 * that follows starts now, never earlier (a spell that ended before a quiet hour, or a hold, would
 * otherwise make the partner look silent the moment it is at its cap again).
 */
export function atCapSince(
  prev: number | undefined,
  exchange: { inFlight: number; limit: number; granted: number },
  now: number,
): number | undefined {
  if (exchange.inFlight < exchange.limit) return undefined;
  return exchange.granted > 0 || prev === undefined ? now : prev;
}

/** A partner this process found silent at its cap, as a producer run sees it (store clock). */
export interface SilentPartner {
  /** When it was found silent. */
  silentSince: number;
  /** Until when its orders are handed back without an attempt. */
  skipUntil: number;
  /** When it last answered healthily (AnswerStats.lastOkAt). */
  lastOkAt: number;
  /** Its callbacks in flight across all replicas, and its cap in its current state. */
  inFlight: number;
  limit: number;
  now: number;
  callbackTimeoutMs: number;
}

/**
 * How long a partner stays silent without answering: by then its free slots have timed out a few times
 * over, and its circuit has had the evidence to decide about it. A spell that outlived its backlog ends
 * too, or it would keep its producer reading partner by partner for good.
 */
export const SILENT_FOR_TIMEOUTS = 3;

interface SilentRow {
  when: string;
  guard: (p: SilentPartner) => boolean;
  /** How many of its orders a run may lease, or 'over': its orders are leased, and admitted, as usual. */
  decide: (p: SilentPartner) => number | 'over';
}

/**
 * What a producer run may lease of a partner found silent at its cap; the first row whose guard holds
 * decides. Leased in full, the backlog of a partner that still does not answer would take the queue's
 * room and the workers' time from every other partner, only to be handed back.
 */
export const WHILE_SILENT: readonly SilentRow[] = [
  {
    when: 'it answered healthily since it was found silent',
    guard: (p) => p.lastOkAt > p.silentSince,
    decide: () => 'over',
  },
  {
    when: `silent for ${SILENT_FOR_TIMEOUTS} callback timeouts`,
    guard: (p) => p.now - p.silentSince >= SILENT_FOR_TIMEOUTS * p.callbackTimeoutMs,
    decide: () => 'over',
  },
  {
    when: 'its orders are handed back without an attempt',
    guard: (p) => p.skipUntil > p.now,
    decide: () => 0,
  },
  {
    when: 'otherwise: as many as it has free slots',
    guard: () => true,
    decide: (p) => Math.max(0, p.limit - p.inFlight),
  },
];

export function leaseWhileSilent(p: SilentPartner): number | 'over' {
  return WHILE_SILENT.find((row) => row.guard(p))!.decide(p);
}
