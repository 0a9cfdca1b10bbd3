import type { Config } from '../config';
import type { Db } from '../db/connection';
import { deferOriginOrders, type DeferTo } from '../db/defer-orders';
import type { Logger } from '../observability/logger';
import type { HttpAnswer, Verdict } from './classify';
import type { Admission, Admitted, HostGate, Refusal } from './host-gate';
import type { PartnerRateLimit } from './partner-rate-limit';
import type { SlotWaiters } from './slot-waiters';

// How one attempt deals with its partner around the callback: held before the claim, admitted to a
// slot (waiting briefly), paced by the partner's rate limit, and the gate told how the partner behaved.
// deliverOrder calls these in that order; the gate and the slots are per process, the rate limit shared.

/** What the partner's side of an attempt needs; DeliveryDeps has all of it. */
export interface PartnerDeps {
  db: Db;
  config: Pick<Config, 'retryMaxMs'>;
  gate: HostGate;
  slots: SlotWaiters;
  rateLimit?: PartnerRateLimit;
}

/**
 * Tells the gate how the partner behaved. "Not now" answers and no answer at all count against it;
 * any other answer, even a final 4xx, shows a live partner. When this opens the partner's circuit,
 * its ready orders are deferred in one statement so they stop reaching the queue. `admission`: the
 * callback's, which says whether it was the probe.
 */
export function settleGate(
  deps: PartnerDeps,
  url: URL,
  admission: Admitted,
  verdict: Verdict | undefined,
  answer: HttpAnswer | undefined,
  aborted: boolean,
  durationMs: number,
  log: Logger,
): void {
  // Retry-After slows the whole partner down, within the same ceiling that applies to one order's retry.
  const retryAfterMs = answer && (answer.status === 429 || answer.status === 503) ? answer.retryAfterMs : undefined;
  const pauseMs = retryAfterMs === undefined ? undefined : Math.min(retryAfterMs, deps.config.retryMaxMs);
  // No verdict: the attempt threw before one was reached, which shows nothing good about the partner.
  const outcome = aborted ? 'aborted' : { failed: verdict === undefined || verdict.kind === 'retry', pauseMs, durationMs };
  const openedUntil = deps.gate.settle(url.origin, outcome, Date.now(), admission.probe);
  deps.slots.freed(url.origin);
  if (openedUntil === undefined) return;
  // After a circuit opened by failures one probe goes out; the rest of the backlog waits for its answer.
  holdPartnerOrders(deps, url, new Date(openedUntil), log, 'circuit open', deps.gate.backlogAfterHoldMs(url.origin));
}

/** Gives back a slot that admission took for a callback that is not being sent; no verdict on the partner. */
export function releaseSlot(deps: PartnerDeps, origin: string, admission: Admitted): void {
  deps.gate.settle(origin, 'aborted', Date.now(), admission.probe);
  deps.slots.freed(origin);
}

/** Why, and until when, a partner's orders are handed back unclaimed; the flags are HostGate's (Refusal). */
export interface PartnerHold extends DeferTo {
  reason: string;
  holdPartner?: boolean;
  answering?: boolean;
}

/**
 * Why the partner's orders should not even be claimed now, and until when, or undefined: its circuit
 * is open, it is at its cap and not answering (HostGate), or its rate limit is known to be used up for
 * this second (then back anywhere in the next one, so they do not all return at once).
 */
function holdBeforeClaim(deps: PartnerDeps, origin: string): PartnerHold | undefined {
  const refusal = deps.gate.holdUntil(origin, Date.now());
  if (refusal) return { ...deferTo(refusal), reason: refusal.reason, holdPartner: refusal.holdPartner, answering: refusal.answering };
  if (!deps.rateLimit) return undefined;
  let fullUntil: number | undefined;
  try {
    fullUntil = deps.rateLimit.knownFullUntil(new URL(origin).hostname, Date.now());
  } catch {
    return undefined; // not a URL: a forged hint, the claim and its checks deal with the order
  }
  if (fullUntil === undefined) return undefined;
  return { until: new Date(fullUntil + Math.floor(Math.random() * 1000)), reason: `rate limit of ${origin} used up this second` };
}

/** Where a refusal sends the order it refuses: see DeferTo. */
export function deferTo(refusal: Refusal): DeferTo {
  return { until: new Date(refusal.until), probeAt: refusal.circuitEnd === undefined ? undefined : new Date(refusal.circuitEnd) };
}

/**
 * holdBeforeClaim, asked for one order to `origin` by an attempt or by the producer before it queues
 * the order; when the answer is to hold the partner's whole backlog (silent at its cap), that is done
 * too, in one statement.
 */
export function partnerHold(deps: PartnerDeps, origin: string, log: Logger): PartnerHold | undefined {
  const held = holdBeforeClaim(deps, origin);
  if (held?.holdPartner) holdPartnerOrders(deps, new URL(origin), held.until, log, 'silent at its cap');
  return held;
}

/**
 * A place in the partner's rate limit for this callback. When Redis cannot be asked, the callback waits
 * a second rather than going out unpaced: the limit is the partner's, and Redis down stops the queue anyway.
 */
export async function takeRate(deps: PartnerDeps, url: URL, log: Logger): Promise<{ go: true } | { go: false; until: number }> {
  if (!deps.rateLimit?.limited(url.hostname)) return { go: true };
  try {
    return await deps.rateLimit.take(url.hostname);
  } catch (err) {
    log.warn({ err, origin: url.origin }, 'could not check the partner rate limit; deferring the callback');
    return { go: false, until: Date.now() + 1000 };
  }
}

/**
 * Defers all the partner's ready orders in one statement, so they stop reaching the queue at all;
 * `probeWaitMs`: see deferOriginOrders.
 */
export function holdPartnerOrders(deps: PartnerDeps, url: URL, until: Date, log: Logger, why: string, probeWaitMs = 0): void {
  deferOriginOrders(deps.db, url, until, probeWaitMs)
    .then((deferred) => log.warn({ origin: url.origin, until, deferred, why }, 'partner held: its orders wait without taking workers'))
    .catch((err) => log.warn({ err, origin: url.origin, why }, 'could not defer the orders of a held partner'));
}

/**
 * How long an attempt may wait in the process for a slot of a partner that is at its cap but answering
 * well. Short: past it, the order goes back to Postgres until shortly.
 */
const SLOT_WAIT_MS = 1000;

/** Admission to the partner, waiting briefly for a slot when the gate says that is worth it. */
export async function admitWaiting(deps: PartnerDeps, origin: string, shutdown: AbortSignal): Promise<Admission> {
  const deadline = Date.now() + SLOT_WAIT_MS;
  let admission = deps.gate.admit(origin, Date.now());
  let woken = false;
  while (!admission.admitted && admission.waitable) {
    woken = await deps.slots.wait(origin, deadline - Date.now(), shutdown);
    if (!woken) break;
    admission = deps.gate.admit(origin, Date.now());
  }
  // Woken for a slot but not taking it (the partner's circuit opened meanwhile): the wake-up goes to
  // the next in line, or a freed slot could sit unused while others wait out their time.
  if (woken && !admission.admitted) deps.slots.freed(origin);
  return admission;
}
