import type { Dispatcher } from 'undici';

import type { Config } from '../config';
import type { ClaimedOrder } from '../db/claim-order';
import type { Db } from '../db/connection';
import type { DeferTo } from '../db/defer-orders';
import { mayPassOnRetry } from '../db/may-pass-on-retry';
import type { AttemptOutcome, AttemptRecord } from '../db/record-attempt';
import { ClaimLapsedError } from '../errors/claim-lapsed-error';
import type { Logger } from '../observability/logger';
import { redactUrl } from '../observability/redact-url';
import type { Hold, PartnerGate } from '../partners/partner-gate';
import { partnerOutcome, stoppedByUs } from '../partners/partner-outcome';
import { CallbackDeadline } from './callback-deadline';
import { classifyAnswer, type HttpAnswer, type Verdict } from './classify';
import { classifyError } from './classify-error';
import { decideOutcome } from './decide-outcome';
import type { PartnerRateLimit } from './partner-rate-limit';
import { prepareCallback } from './prepare-callback';
import { sendCallback } from './send-callback';
import type { SigningKeys } from './signing-keys';
import { webhookIdFor } from './webhook-id';

/** The writes an attempt makes to its order; the worker batches them across concurrent attempts. */
export interface OrderWrites {
  /** claimOrders for one order. */
  claim(orderId: string): Promise<ClaimedOrder | undefined>;
  /** recordAttempts for one attempt. */
  record(record: AttemptRecord): Promise<boolean>;
  /** deferClaimedOrders for one order: false when the claim was no longer ours. */
  deferClaimed(order: ClaimedOrder, to: DeferTo): Promise<boolean>;
  /** deferUnclaimedOrders for one order. */
  deferUnclaimed(orderId: string, to: DeferTo): Promise<void>;
}

export interface DeliveryDeps {
  db: Db;
  orders: OrderWrites;
  http: Dispatcher;
  config: Pick<Config, 'claimTtlMs' | 'callbackTimeoutMs' | 'destinations' | 'maxPayloadBytes' | 'retry' | 'finalStatuses'>;
  logger: Logger;
  workerId: string;
  signingKeys: SigningKeys;
  /** Partner protection, keyed by origin (scheme, host, port), shared by every replica: docs/partners.md. */
  partners: Pick<PartnerGate, 'holdBeforeClaim' | 'admit' | 'settle'>;
  /** Callbacks per second per host, across replicas; absent when PARTNER_RATE_LIMITS lists no host. */
  rateLimit?: PartnerRateLimit;
  /** Told about every attempt that got as far as a claim (metrics). */
  observe?: (attempt: AttemptObservation) => void;
}

/** deferred: the partner was held, at its cap, or over its rate limit; handed back, no attempt counted. */
export type DeliveryResult = AttemptOutcome['kind'] | 'skipped' | 'superseded' | 'deferred';

export interface AttemptObservation {
  result: DeliveryResult;
  /** 1-based attempt number. */
  attempt: number;
  /** How long the HTTP exchange took; undefined when no request was made (a bad row). */
  httpMs?: number;
  /** How long the order had been ready when the attempt ended, on Postgres' clock. */
  readyForMs: number;
}

/**
 * The request is aborted this long before the claim runs out, so the claim always outlives the
 * request: a second worker can only claim the order once this one has stopped talking to the partner.
 */
const CLAIM_SAFETY_MS = 1000;
/**
 * A request is not written with less than this left before it would be aborted (CLAIM_SAFETY_MS before
 * the claim ends), or half the callback timeout if that is less (a claim at its shortest, the timeout
 * + 1 s, still leaves half the timeout to claim, read the keys and take a slot in): a process that was
 * paused past that point hands the order back instead, for LAPSE_DELAY_MS.
 */
const MIN_SEND_BUDGET_MS = 1000;
const LAPSE_DELAY_MS = 1000;
/** How long an order waits, handed back, when the signing keys could not be read. */
const KEYS_UNKNOWN_DELAY_MS = 2000;

/**
 * One delivery attempt for one order: claim it, check it, send it, record what happened. Never throws
 * for anything the partner or the row does; throws only when a write to the order failed on every try
 * (its claim or queue lease then runs out and the order is offered again).
 */
export async function deliverOrder(
  deps: DeliveryDeps,
  orderId: string,
  shutdown: AbortSignal,
  originHint?: string,
): Promise<DeliveryResult> {
  const { config } = deps;
  const log = deps.logger.child({ orderId });
  const held = originHint ? holdBeforeClaim(deps, originHint) : undefined;
  if (held) {
    // One (shared) statement hands the order back; no claim, no request.
    await withRetries(log, 'handing the order back', () => deps.orders.deferUnclaimed(orderId, held), shutdown);
    log.debug({ origin: originHint, delayMs: Math.round(held.delayMs), reason: held.reason }, 'partner held; deferred without an attempt');
    return 'deferred';
  }
  // Taken before each try of the claim: the claim's lease counts from when its statement ran, which is
  // later, so a budget counted from here always ends before the lease does. Monotonic: the wall clock
  // can step (NTP), this cannot. A claim that failed is tried again within a few seconds: left to
  // throw, its order would wait for its queue lease (up to a minute) after a cut connection.
  let claimAskedAt = 0;
  let claimAskedAtWall = 0;
  const order = await withRetries(
    log,
    'claiming the order',
    () => {
      claimAskedAt = performance.now();
      claimAskedAtWall = Date.now();
      return deps.orders.claim(orderId);
    },
    shutdown,
  );
  if (!order) {
    log.debug('not claimable (held by another worker, not due, or no longer at 5)');
    return 'skipped';
  }
  // Postgres' clock, carried forward on this process's monotonic one: what the attempt stamps comes from
  // the clock every replica shares, however far this host's own clock is off.
  const claimedAt = performance.now();
  const pgNow = () => order.claimedAtMs + (performance.now() - claimedAt);

  // When the attempt started: after any wait for a slot, which is not the partner's time.
  let startedAt = new Date(pgNow());
  let startedMono = performance.now();
  let verdict: Verdict;
  let answer: HttpAnswer | undefined;
  let httpMs: number | undefined;
  let lapsed = false;
  // From the claim to the record, whatever throws in our own code is recorded as a failed attempt with
  // its error: left unrecorded, the order would come back when its claim ran out, and fail the same way.
  try {
    const prepared = prepareCallback(order, config.destinations, config.maxPayloadBytes);
    if (!prepared.ok) {
      verdict = { kind: 'failed', reason: prepared.reason };
    } else {
      const { url } = prepared.callback;
      const signingKeys = await deps.signingKeys.keysFor(url.hostname);
      if (!signingKeys) {
        // Never signed with a key that may be wrong (a partner's answer to it, 401, would fail the order).
        const deferred = await deps.orders.deferClaimed(order, { delayMs: KEYS_UNKNOWN_DELAY_MS });
        log.warn('partner secrets could not be read: handed back without an attempt until they can');
        return deferred ? 'deferred' : 'superseded';
      }
      const admission = await deps.partners.admit(url.origin, shutdown);
      if (!admission.admitted) {
        const deferred = await deps.orders.deferClaimed(order, admission);
        log.debug({ reason: admission.reason, delayMs: Math.round(admission.delayMs) }, 'deferred without an attempt');
        return deferred ? 'deferred' : 'superseded';
      }
      const paced = await deps.rateLimit?.take(url.hostname, log);
      if (paced && !paced.go) {
        deps.partners.settle(admission.slot, { kind: 'not_counted' });
        const deferred = await deps.orders.deferClaimed(order, paced);
        log.debug({ delayMs: paced.delayMs }, "over the partner's rate limit; deferred without an attempt");
        return deferred ? 'deferred' : 'superseded';
      }
      startedAt = new Date(pgNow());
      startedMono = performance.now();
      const claimEndsAt = claimAskedAt + config.claimTtlMs - CLAIM_SAFETY_MS;
      const minSendBudget = Math.min(MIN_SEND_BUDGET_MS, config.callbackTimeoutMs / 2);
      const budget = Math.min(config.callbackTimeoutMs, claimEndsAt - performance.now());
      const deadline = new CallbackDeadline(shutdown, budget, budget < config.callbackTimeoutMs ? 'claim' : 'timeout');
      let settled: Verdict | undefined;
      try {
        answer = await sendCallback(
          deps.http,
          {
            url,
            body: prepared.callback.body,
            webhookId: webhookIdFor(order.id),
            signingKeys,
            sendBy: { mono: claimEndsAt - minSendBudget, wall: claimAskedAtWall + (claimEndsAt - claimAskedAt) - minSendBudget },
            now: pgNow,
          },
          deadline,
        );
        settled = classifyAnswer(answer, config.finalStatuses);
      } catch (err) {
        lapsed = err instanceof ClaimLapsedError;
        settled =
          deadline.cause === 'shutdown' || lapsed
            ? { kind: 'retry', reason: lapsed ? (err as Error).message : 'aborted by shutdown' }
            : classifyError(err, deadline.cause, config.callbackTimeoutMs);
      } finally {
        deadline.dispose();
        httpMs = performance.now() - startedMono;
        // In finally: the slot must be given back whatever happened, or the partner loses it until its
        // lease runs out. A request we stopped (shutdown, a claim running out early, a claim that had run
        // out before it was written) says nothing of the partner.
        const aborted = lapsed || stoppedByUs(deadline.cause, budget, config.callbackTimeoutMs);
        deps.partners.settle(
          admission.slot,
          partnerOutcome(settled, answer, { aborted, answerMs: httpMs, firstAttempt: order.attempts === 0 }),
        );
      }
      verdict = settled;
    }
  } catch (err) {
    log.error({ err }, 'the attempt failed in our own code; recorded as a failed attempt');
    verdict = { kind: 'retry', reason: `internal error: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500) };
  }

  // Handed back without counting an attempt: aborted by shutdown, or never written (its claim ran out).
  const outcome: AttemptOutcome =
    verdict.kind === 'retry' && (shutdown.aborted || lapsed) && !answer
      ? { kind: 'released', error: verdict.reason, delayMs: lapsed ? LAPSE_DELAY_MS : 0 }
      : decideOutcome(verdict, order.attempts + 1, config.retry);
  // The partner has been told (or not): losing that fact to a passing database error would mean telling
  // it again, so the record is retried within the claim's lifetime.
  const durationMs = performance.now() - startedMono;
  const applied = await withRetries(log, 'recording the attempt', () =>
    deps.orders.record({ order, outcome, startedAt, durationMs, httpStatus: answer?.status, worker: deps.workerId }),
  );
  logOutcome(log, order, outcome, applied, answer?.status);
  const result = applied ? outcome.kind : 'superseded';
  deps.observe?.({ result, attempt: order.attempts + 1, httpMs, readyForMs: pgNow() - order.readySince.getTime() });
  return result;
}

/**
 * Whether the order should be handed back before it is even claimed: its partner is held (or silent at
 * its cap), or its rate limit is known to be used up for this second.
 */
function holdBeforeClaim(deps: DeliveryDeps, origin: string): Hold | undefined {
  const held = deps.partners.holdBeforeClaim(origin);
  if (held || !deps.rateLimit) return held;
  let host: string;
  try {
    host = new URL(origin).hostname;
  } catch {
    return undefined; // not a URL: a forged hint; the claim and its checks deal with the order
  }
  return deps.rateLimit.knownFull(host);
}

/** The waits before each further try of a write that failed on an error the batched statements do not retry themselves. */
const WRITE_RETRY_DELAYS_MS = [100, 500, 2000];

/**
 * Runs one of an attempt's writes again when it fails on what may pass (mayPassOnRetry). Each try is
 * one call of OrderWrites, which already runs its statement again on a deadlock (3 runs) and, for the
 * record, asks again while another transaction holds the row (up to 10 s); this is for what those
 * leave, a lost connection above all. None of the writes changes a row twice: the claim and the
 * hand-back change a row only while it is as they expect, and the record carries the claim's token. A
 * claim whose reply was lost after it committed finds its order claimed on the next try: that order
 * comes back when that claim runs out. No further try once `stop` has fired: the
 * order then comes back with its queue lease, and shutdown does not wait on a database that is gone.
 */
async function withRetries<T>(log: Logger, what: string, write: () => Promise<T>, stop?: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= WRITE_RETRY_DELAYS_MS.length || !mayPassOnRetry(err) || stop?.aborted) throw err;
      log.warn({ err }, `${what} failed; retrying`);
      await new Promise((resolve) => setTimeout(resolve, WRITE_RETRY_DELAYS_MS[attempt]));
    }
  }
}

function logOutcome(log: Logger, order: ClaimedOrder, outcome: AttemptOutcome, applied: boolean, httpStatus?: number): void {
  const fields = { attempt: order.attempts + 1, httpStatus, outcome: outcome.kind };
  if (!applied) {
    log.warn(fields, 'attempt finished after its claim was superseded; the order was left as the newer claim has it');
    return;
  }
  switch (outcome.kind) {
    case 'delivered':
      log.debug(fields, 'delivered');
      break;
    case 'retry':
      log.info({ ...fields, error: outcome.error, delayMs: outcome.delayMs, url: redactUrl(order.callbackUrl ?? '') }, 'will retry');
      break;
    case 'failed':
      log.warn({ ...fields, error: outcome.error, url: redactUrl(order.callbackUrl ?? '') }, 'failed for good');
      break;
    case 'released':
      log.info({ ...fields, error: outcome.error }, 'handed back without an attempt; another worker will deliver it');
      break;
  }
}
