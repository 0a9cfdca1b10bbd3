import { Redis } from 'ioredis';

import { LocalPartnerStore } from '../../src/partners/local-partner-store';
import type { PartnerState } from '../../src/partners/partner-circuit';
import { directoryKeys, LocalPartnerDirectory, type PartnerDirectory, RedisPartnerDirectory } from '../../src/partners/partner-directory';
import { type ExchangeRequest, type PartnerStore, readRequest, type StoreTimings } from '../../src/partners/partner-store';
import { partnerKeys, RedisPartnerStore } from '../../src/partners/redis-partner-store';
import { SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { sleep } from '../helpers/wait-for';

// The store's contract, the same for the shared store (Redis) and the one a process falls back to.
const timings: StoreTimings = { slotLeaseMs: 400, windowMs: 1000, bucketMs: 100, keepMs: 60_000 };
const queueName = uniqueQueueName();
let redis: Redis;

beforeAll(() => {
  redis = new Redis(SHARED_REDIS_URL);
});

afterAll(async () => {
  const keys = await redis.keys(`oc:{${queueName}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

const stores: [string, () => PartnerStore][] = [
  ['RedisPartnerStore', () => new RedisPartnerStore(redis, queueName, timings, 1000)],
  ['LocalPartnerStore', () => new LocalPartnerStore(timings, 1000)],
];

const want = (ids: string[], version = 0, limit = 2, notBefore = 0): ExchangeRequest => ({
  ...readRequest(),
  want: { ids, version, notBefore, limit },
});
const outcomes = (attempts: number, failures: number, extra: Partial<ExchangeRequest['outcomes']> = {}): ExchangeRequest => ({
  ...readRequest(),
  outcomes: { attempts, failures, healthy: attempts - failures, healthyMs: (attempts - failures) * 40, ...extra },
});
const opened = (since: number, untilIn: number): PartnerState => ({
  state: 'open',
  version: 1,
  since,
  until: since + untilIn,
  cooldownMs: 1000,
  reason: 'test',
});

let n = 0;
const origin = () => `http://127.0.0.1:${40_000 + n++}`;

describe.each(stores)('%s', (_name, make) => {
  it('grants at most `limit` slots across everyone who asks, and a freed slot to the next', async () => {
    const store = make();
    const partner = origin();
    expect(await store.exchange(partner, want(['a', 'b', 'c']))).toMatchObject({ granted: 2, inFlight: 2 });
    expect(await store.exchange(partner, want(['d']))).toMatchObject({ granted: 0, inFlight: 2 });
    expect(await store.exchange(partner, { ...want(['d']), release: ['a', 'unknown'] })).toMatchObject({ granted: 1, inFlight: 2 });
  });

  it('gives a slot back by itself when its lease runs out, unless its holder renews it', async () => {
    const store = make();
    const partner = origin();
    await store.exchange(partner, want(['kept', 'lost']));
    for (let i = 0; i < 3; i++) {
      await sleep(200);
      await store.exchange(partner, { ...readRequest(), renew: ['kept'] });
    }
    expect(await store.exchange(partner, readRequest())).toMatchObject({ inFlight: 1 });
    await sleep(500);
    expect(await store.exchange(partner, readRequest())).toMatchObject({ inFlight: 0 });
  });

  it('grants only under the version asked for, and not before the time asked for', async () => {
    const store = make();
    const partner = origin();
    expect(await store.exchange(partner, want(['a'], 1))).toMatchObject({ granted: 0 });
    const { now } = await store.exchange(partner, readRequest());
    expect(await store.exchange(partner, want(['a'], 0, 2, now + 60_000))).toMatchObject({ granted: 0 });
    expect(await store.exchange(partner, want(['a'], 0, 2, now))).toMatchObject({ granted: 1 });
  });

  it("counts outcomes over the window only, and keeps the partner's last error and answer time", async () => {
    const store = make();
    const partner = origin();
    await store.exchange(partner, outcomes(10, 4, { lastError: 'HTTP 500' }));
    const snapshot = await store.exchange(partner, outcomes(5, 5, { lastError: 'timed out after 10000 ms' }));
    expect(snapshot.tallies).toMatchObject({ attempts: 15, failures: 9 });
    expect(snapshot.lastError).toEqual({ message: 'timed out after 10000 ms', at: snapshot.now });
    expect(snapshot.answers).toEqual({ answerMs: 40, lastOkAt: expect.any(Number) });
    await sleep(1300);
    expect((await store.exchange(partner, readRequest())).tallies).toMatchObject({ attempts: 0, failures: 0 });
  });

  it('writes a transition only over the version it was decided on, on its own clock, and counts probes of that version only', async () => {
    const store = make();
    const partner = origin();
    await store.exchange(partner, outcomes(20, 20));
    const first = await store.transition(partner, 0, opened(0, 5000), false);
    expect(first).toMatchObject({ applied: true, state: { state: 'open', version: 1, cooldownMs: 1000, reason: 'test' } });
    expect(first.state.until - first.state.since).toBe(5000); // counted from the store's now, not the caller's
    expect(first.state.since).toBe(first.now);
    expect((await store.transition(partner, 0, opened(0, 9000), false)).applied).toBe(false); // another replica was first

    const probes = (version: number, ok: number) => ({ ...readRequest(), probes: { version, ok, failed: 0 } });
    await store.exchange(partner, probes(0, 5)); // answers of an older state's probes
    expect((await store.exchange(partner, probes(1, 2))).tallies).toMatchObject({ probesOk: 2, probesFailed: 0, attempts: 20 });

    const closed: PartnerState = { state: 'closed', version: 2, since: 0, until: 0, cooldownMs: 1000, reason: 'probes answered' };
    expect(await store.transition(partner, 1, closed, true)).toMatchObject({ applied: true, state: { state: 'closed', version: 2 } });
    expect((await store.exchange(partner, readRequest())).tallies).toEqual({ attempts: 0, failures: 0, probesOk: 0, probesFailed: 0 });
  });
});

describe('Redis keys', () => {
  it("keep each partner's keys under one hash tag (one slot of a Redis Cluster), the origin unable to close it", () => {
    const keys = partnerKeys('q', 'http://a.example:8080');
    const tags = keys.map((key) => /\{([^}]*)\}/.exec(key)![1]);
    expect(new Set(tags).size).toBe(1);
    expect(partnerKeys('q', 'http://x}{y')[0]).toMatch(/^oc:\{q\|http%3A%2F%2Fx%7D%7By\}:state$/);
    const directory = Object.values(directoryKeys('q')).map((key) => /\{([^}]*)\}/.exec(key)![1]);
    expect(new Set(directory)).toEqual(new Set(['q']));
  });
});

const directories: [string, () => PartnerDirectory][] = [
  ['RedisPartnerDirectory', () => new RedisPartnerDirectory(redis, queueName)],
  ['LocalPartnerDirectory', () => new LocalPartnerDirectory()],
];

describe.each(directories)('%s', (_name, make) => {
  it('lists the partners that are not closed, a newer version always winning over an older one', async () => {
    const directory = make();
    const [a, b] = [origin(), origin()];
    await directory.note(a, opened(1, 1000));
    await directory.note(b, opened(1, 1000));
    await directory.note(b, { ...opened(1, 1000), state: 'closed', version: 2 });
    await directory.note(b, { ...opened(1, 1000), version: 1 }); // late news of the older state
    const { states } = await directory.notClosed();
    expect(states.get(a)).toMatchObject({ state: 'open', version: 1 });
    expect(states.has(b)).toBe(false);
  });

  it('takes a state begun later as newer even at a lower version: a partner whose state expired and began again', async () => {
    const directory = make();
    const a = origin();
    await directory.note(a, { ...opened(1000, 1000), version: 9 });
    await directory.note(a, { ...opened(5000, 1000), state: 'held', version: 1 }); // its state began again at 0
    await directory.note(a, { ...opened(1000, 1000), version: 10 }); // late news from before
    expect((await directory.notClosed()).states.get(a)).toMatchObject({ state: 'held', version: 1 });
  });

  it('lists the partners seen lately, newest first', async () => {
    const directory = make();
    const [a, b] = [origin(), origin()];
    await directory.seen([a]);
    await sleep(5);
    await directory.seen([b]);
    expect((await directory.recent(60_000)).slice(0, 2)).toEqual([b, a]);
  });
});
