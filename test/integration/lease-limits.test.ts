import { Redis } from 'ioredis';

import { createLogger } from '../../src/observability/logger';
import { LeaseLimits } from '../../src/partners/lease-limits';
import type { CircuitRules, PartnerState } from '../../src/partners/partner-circuit';
import { LocalPartnerDirectory, RedisPartnerDirectory } from '../../src/partners/partner-directory';
import { readRequest, storeTimings } from '../../src/partners/partner-store';
import { partnerKeys, RedisPartnerStore } from '../../src/partners/redis-partner-store';
import { SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { sleep, waitFor } from '../helpers/wait-for';

// What the producer may lease of each partner, and how it keeps the directory honest: the directory is
// a copy that can fall behind the partners' own state (a note lost to a Redis blip), and a half-open
// partner with nothing to probe must not stay half-open for good.
const rules: CircuitRules = {
  failureRate: 0.9,
  minAttempts: 20,
  windowMs: 30_000,
  cooldownMs: 1000,
  maxCooldownMs: 4000,
  probes: 3,
  maxPauseMs: 60_000,
  maxInFlight: 8,
};
const queueName = uniqueQueueName();
let redis: Redis;
let store: RedisPartnerStore;
let directory: RedisPartnerDirectory;
let limits: LeaseLimits;

beforeAll(() => {
  redis = new Redis(SHARED_REDIS_URL);
  store = new RedisPartnerStore(redis, queueName, storeTimings(rules.windowMs), rules.cooldownMs);
  directory = new RedisPartnerDirectory(redis, queueName);
  limits = new LeaseLimits({ shared: { store, directory }, local: new LocalPartnerDirectory(), rules, logger: createLogger('silent') });
});

afterAll(async () => {
  const keys = await redis.keys(`oc:{${queueName}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

/** The partner's stored state, as a replica would have written it (the end may be in the past). */
async function storeState(origin: string, fields: Omit<PartnerState, 'reason'>): Promise<PartnerState> {
  const state = { ...fields, reason: 'test' };
  await redis.hset(partnerKeys(queueName, origin)[0], { ...state, actor: '' });
  return state;
}

it('mends a directory that fell behind: a closed partner listed as open is leased in full again within seconds', async () => {
  const origin = 'http://127.0.0.1:41001';
  const { now } = await store.exchange(origin, readRequest());
  const open = await storeState(origin, { state: 'open', version: 4, since: now - 10_000, until: now - 5000, cooldownMs: 1000 });
  await directory.note(origin, open);
  // The partner closed, but that note was lost.
  await storeState(origin, { state: 'closed', version: 5, since: now - 1000, until: 0, cooldownMs: 1000 });

  expect((await limits.get()).get(origin)).toBe(3); // what the stale directory says: half-open, its probes
  await waitFor('the directory mended', async () => !(await limits.get()).has(origin), 12_000, 250);
  expect((await directory.notClosed()).states.has(origin)).toBe(false);
}, 20_000);

it('closes a half-open partner that had nothing to probe for a minute, so the producer reads as usual again', async () => {
  const origin = 'http://127.0.0.1:41002';
  const { now } = await store.exchange(origin, readRequest());
  const ended = await storeState(origin, { state: 'open', version: 2, since: now - 200_000, until: now - 61_000, cooldownMs: 1000 });
  await directory.note(origin, ended);
  const held = 'http://127.0.0.1:41003';
  await directory.note(held, await storeState(held, { state: 'held', version: 1, since: now - 200_000, until: 0, cooldownMs: 1000 }));

  // The producer asks before each run; the reconciler runs from there.
  await waitFor(
    'the quiet partner closed',
    async () => (await limits.get()) && (await store.exchange(origin, readRequest())).state.state === 'closed',
    12_000,
    250,
  );
  expect((await store.exchange(origin, readRequest())).state).toMatchObject({ version: 3, reason: 'no orders to probe' });
  await waitFor('out of the directory', async () => !(await limits.get()).has(origin), 5000, 250);
  // A partner held by hand stays held, however quiet.
  expect((await limits.get()).get(held)).toBe(0);
  expect((await store.exchange(held, readRequest())).state.state).toBe('held');
}, 20_000);

it("a half-open partner's probes stay on offer to every shard's run until one leases some; then to none for a second", async () => {
  const origin = 'http://127.0.0.1:41004';
  const { now } = await store.exchange(origin, readRequest());
  await directory.note(
    origin,
    await storeState(origin, { state: 'open', version: 1, since: now - 10_000, until: now - 5000, cooldownMs: 1000 }),
  );

  await sleep(600); // the directory is read again after at most half a second
  // Shard 0's run is offered the probes, but its shard has none of the partner's orders.
  expect((await limits.get()).get(origin)).toBe(3);
  expect((await limits.get()).get(origin)).toBe(3); // so shard 2's run, which has them, is offered them too
  limits.probesLeased([origin]);
  expect((await limits.get()).get(origin)).toBe(0);
  await waitFor('offered again a second later', async () => (await limits.get()).get(origin) === 3, 3000, 100);
});

it('the free slots of a partner silent at its cap are offered until a run leases some; then none for a second', async () => {
  const origin = 'http://127.0.0.1:41005';
  const silent = new LeaseLimits({
    shared: { store, directory },
    local: new LocalPartnerDirectory(),
    rules,
    logger: createLogger('silent'),
    capacitySkips: () => new Map([[origin, 2]]),
  });
  expect((await silent.get()).get(origin)).toBe(2);
  expect((await silent.get()).get(origin)).toBe(2); // offered to every shard's run until one leases
  silent.probesLeased([origin]);
  // The partner is closed, so the directory does not list it: the lease is remembered all the same.
  expect((await silent.get()).get(origin)).toBe(0);
  await sleep(600);
  expect((await silent.get()).get(origin)).toBe(0);
  await waitFor('offered again a second later', async () => (await silent.get()).get(origin) === 2, 3000, 100);
});
