import { Redis } from 'ioredis';

import { createLogger } from '../../src/observability/logger';
import { LocalPartnerStore } from '../../src/partners/local-partner-store';
import type { CircuitRules } from '../../src/partners/partner-circuit';
import { LocalPartnerDirectory, RedisPartnerDirectory } from '../../src/partners/partner-directory';
import { PartnerGate, type Slot } from '../../src/partners/partner-gate';
import { readRequest, storeTimings } from '../../src/partners/partner-store';
import { RedisPartnerStore } from '../../src/partners/redis-partner-store';
import { PrivateRedis } from '../helpers/redis-server';
import { sleep, waitFor } from '../helpers/wait-for';

const rules: CircuitRules = {
  failureRate: 0.9,
  minAttempts: 20,
  windowMs: 30_000,
  cooldownMs: 1000,
  maxCooldownMs: 4000,
  probes: 3,
  maxPauseMs: 60_000,
  maxInFlight: 2,
};
const ORIGIN = 'http://127.0.0.1:7';
const HELD = 'http://127.0.0.1:8';
let redis: PrivateRedis;
let client: Redis;
let gate: PartnerGate;
let shared: RedisPartnerStore;
const observed: boolean[] = [];

beforeAll(async () => {
  redis = await PrivateRedis.start();
  client = new Redis(redis.url, { maxRetriesPerRequest: 1, commandTimeout: 500 });
  client.on('error', () => undefined);
  const timings = storeTimings(rules.windowMs);
  shared = new RedisPartnerStore(client, 'q', timings, rules.cooldownMs);
  gate = new PartnerGate({
    shared: { store: shared, directory: new RedisPartnerDirectory(client, 'q') },
    local: { store: new LocalPartnerStore(timings, rules.cooldownMs), directory: new LocalPartnerDirectory() },
    rules,
    callbackTimeoutMs: 1000,
    workerId: 'w',
    logger: createLogger('silent'),
  });
  gate.observe({ transition: () => undefined, shared: (isShared) => observed.push(isShared) });
});

afterAll(async () => {
  gate.stop();
  client.disconnect();
  await redis.stop();
});

const never = new AbortController().signal;
const admitted = async () => {
  const admission = await gate.admit(ORIGIN, never);
  return admission.admitted ? admission.slot : undefined;
};

it('goes on with per-process limits while Redis cannot be asked, says so, and shares state again once it answers', async () => {
  const [a, b] = [await admitted(), await admitted()];
  expect([a?.store, b?.store]).toEqual([shared, shared]);
  expect((await shared.exchange(ORIGIN, readRequest())).inFlight).toBe(2);
  expect(gate.degraded()).toBeUndefined();
  // A partner held by hand, as this process has seen it.
  const { state } = await shared.exchange(HELD, readRequest());
  await shared.transition(
    HELD,
    state.version,
    { state: 'held', version: 1, since: 0, until: 0, cooldownMs: 1000, reason: 'maintenance', actor: 'ops' },
    false,
  );
  expect(await gate.admit(HELD, never)).toMatchObject({ admitted: false, reason: 'held: maintenance' });

  await redis.crash();
  // Redis is away: the next admissions are this process's own, under the same cap, and nothing waits
  // long. Those asked while the first exchange was timing out are not turned away for a full cap.
  const startedAt = Date.now();
  const admissions = await Promise.all([1, 2, 3].map(() => gate.admit(ORIGIN, never)));
  expect(Date.now() - startedAt).toBeLessThan(3000);
  const granted = admissions.filter((x) => x.admitted).map((x) => (x as { slot: Slot }).slot);
  expect(granted.map((slot) => slot.store !== shared)).toEqual([true, true]);
  expect(admissions.find((x) => !x.admitted)).toMatchObject({ reason: 'at its cap (2 in flight)' });
  const [c, d] = granted;
  expect(gate.degraded()).toMatch(/^partner state per process: Redis unavailable/);
  // What Redis last said of a held partner still holds here.
  expect(await gate.admit(HELD, never)).toMatchObject({ admitted: false, reason: 'held: maintenance' });
  expect(observed).toEqual([true, false]);
  for (const slot of [a, b, c, d] as Slot[]) gate.settle(slot, { kind: 'healthy', answerMs: 5, firstAttempt: true });

  await redis.restartEmpty();
  // Asked again in the background, every 5 s: no callback waits on a Redis that is away.
  await waitFor('shared again', async () => gate.degraded() === undefined, 8000, 100);
  expect((await admitted())?.store).toBe(shared);
  expect(gate.degraded()).toBeUndefined();
  expect(observed).toEqual([true, false, true]);
}, 30_000);

it('a partner at its cap again after a quiet spell (a pause) is not taken for silent: its last spell at the cap ended', async () => {
  const timings = storeTimings(rules.windowMs);
  const local = { store: new LocalPartnerStore(timings, rules.cooldownMs), directory: new LocalPartnerDirectory() };
  const quiet = new PartnerGate({ shared: local, local, rules, callbackTimeoutMs: 10_000, workerId: 'q', logger: createLogger('silent') });
  const partner = 'http://127.0.0.1:9';
  try {
    const [a, b] = (await Promise.all([quiet.admit(partner, never), quiet.admit(partner, never)])) as { admitted: true; slot: Slot }[];
    expect(await quiet.admit(partner, never)).toMatchObject({ admitted: false }); // at its cap: a spell begins
    for (const slot of [a.slot, b.slot]) quiet.settle(slot, { kind: 'healthy', answerMs: 20, firstAttempt: true });
    await new Promise((resolve) => setTimeout(resolve, 1500)); // held by hand, say: nothing asked meanwhile

    const again = await Promise.all([1, 2, 3].map(() => quiet.admit(partner, never)));
    const refused = again.find((x) => !x.admitted) as { delayMs: number; reason: string };
    expect(refused.reason).toMatch(/^at its cap/);
    expect(refused.delayMs).toBeLessThan(2000); // about an answer time, not a callback timeout
    expect(quiet.capacitySkips().size).toBe(0); // and the producer goes on leasing its orders
  } finally {
    quiet.stop();
  }
});

it('a partner silent at its cap: once its hand-back ends, the producer may lease its free slots only, until it answers', async () => {
  const timings = storeTimings(rules.windowMs);
  const local = { store: new LocalPartnerStore(timings, rules.cooldownMs), directory: new LocalPartnerDirectory() };
  // Silent after 1 s at the cap with no answer; its orders are then handed back for a callback timeout.
  const silentGate = new PartnerGate({
    shared: local,
    local,
    rules,
    callbackTimeoutMs: 1200,
    workerId: 's',
    logger: createLogger('silent'),
  });
  const partner = 'http://127.0.0.1:10';
  try {
    const [a, b] = (await Promise.all([silentGate.admit(partner, never), silentGate.admit(partner, never)])) as {
      admitted: true;
      slot: Slot;
    }[];
    expect(await silentGate.admit(partner, never)).toMatchObject({ admitted: false, reason: 'at its cap (2 in flight)' });
    expect(silentGate.capacitySkips().size).toBe(0); // at its cap, not yet silent
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await silentGate.admit(partner, never)).toMatchObject({ admitted: false, reason: 'silent at its cap (2 in flight)' });
    expect(silentGate.capacitySkips()).toEqual(new Map([[partner, 0]]));

    // The hand-back is over, but both slots are still taken: none of its backlog.
    await new Promise((resolve) => setTimeout(resolve, 1300));
    expect(silentGate.capacitySkips()).toEqual(new Map([[partner, 0]]));
    // Its requests time out: two free slots, so two orders, not its backlog.
    for (const slot of [a.slot, b.slot]) silentGate.settle(slot, { kind: 'failed', error: 'timed out', firstAttempt: true });
    await waitFor('its slots are free', async () => silentGate.capacitySkips().get(partner) === 2, 3000, 50);

    // It answers: its orders are leased as usual again (well before the spell would end by itself).
    const c = (await silentGate.admit(partner, never)) as { admitted: true; slot: Slot };
    silentGate.settle(c.slot, { kind: 'healthy', answerMs: 30, firstAttempt: true });
    await waitFor('leased as usual', async () => silentGate.capacitySkips().size === 0, 1000, 50);
  } finally {
    silentGate.stop();
  }
});

/** A gate of its own whose partner's two slots are taken, and which has found it silent at its cap. */
async function silentPartner(callbackTimeoutMs: number, partner: string) {
  const timings = storeTimings(rules.windowMs);
  const local = { store: new LocalPartnerStore(timings, rules.cooldownMs), directory: new LocalPartnerDirectory() };
  const own = new PartnerGate({ shared: local, local, rules, callbackTimeoutMs, workerId: 's', logger: createLogger('silent') });
  const slots = ((await Promise.all([own.admit(partner, never), own.admit(partner, never)])) as { admitted: true; slot: Slot }[]).map(
    (x) => x.slot,
  );
  expect(await own.admit(partner, never)).toMatchObject({ admitted: false, reason: 'at its cap (2 in flight)' });
  await new Promise((resolve) => setTimeout(resolve, 1100));
  expect(await own.admit(partner, never)).toMatchObject({ admitted: false, reason: 'silent at its cap (2 in flight)' });
  expect(own.capacitySkips()).toEqual(new Map([[partner, 0]]));
  return { gate: own, slots };
}

it('a partner that answers while its orders are handed back is admitted and leased as usual at once', async () => {
  const partner = 'http://127.0.0.1:11';
  const { gate: own, slots } = await silentPartner(10_000, partner);
  try {
    expect(own.holdBeforeClaim(partner)).toMatchObject({ reason: 'silent at its cap' });
    own.settle(slots[0], { kind: 'healthy', answerMs: 30, firstAttempt: true });
    // Not after the hand-back's 10 s: its answer ends the spell.
    await waitFor('as usual', async () => own.capacitySkips().size === 0 && own.holdBeforeClaim(partner) === undefined, 1000, 50);
  } finally {
    own.stop();
  }
});

it('a silent spell ends after three callback timeouts without an answer: the circuit decides from there on', async () => {
  const partner = 'http://127.0.0.1:12';
  const { gate: own } = await silentPartner(500, partner);
  try {
    await sleep(900);
    expect(own.capacitySkips()).toEqual(new Map([[partner, 0]])); // its two slots are still taken
    await waitFor('spell over', async () => own.capacitySkips().size === 0, 2000, 50);
  } finally {
    own.stop();
  }
});
