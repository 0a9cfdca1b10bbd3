import { Redis } from 'ioredis';

import { readRequest, storeTimings } from '../../src/partners/partner-store';
import { RedisPartnerStore } from '../../src/partners/redis-partner-store';
import { deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { freePort } from '../helpers/free-port';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { sleep, waitFor } from '../helpers/wait-for';

let redis: Redis;

beforeAll(() => {
  redis = new Redis(SHARED_REDIS_URL);
});

afterAll(() => redis.disconnect());

afterEach(() => stopAllDaemons());

const countIn =
  (database: TestDatabase) =>
  async (where: string, bindings: (string | number | Date)[] = []) =>
    Number((await database.db.raw(`SELECT count(*) AS n FROM orders WHERE ${where}`, bindings)).rows[0].n);

it('a partner that always times out does not take the workers from a healthy one', async () => {
  const database = await createTestDatabase();
  const queueName = uniqueQueueName();
  const healthy = await new Receiver(() => ({ status: 200, delayMs: 5 })).start();
  const broken = await new Receiver(() => ({ never: true })).start(); // answers after the full timeout: never
  const count = countIn(database);
  try {
    const MAX_ATTEMPTS = 3;
    const env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
      WORKER_CONCURRENCY: '20',
      MAX_QUEUED_JOBS: '200',
      CALLBACK_TIMEOUT_MS: '1000',
      MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      RETRY_BASE_MS: '100',
      RETRY_MAX_MS: '200',
      BREAKER_COOLDOWN_MS: '2000',
      BREAKER_MAX_COOLDOWN_MS: '4000',
    });
    // The broken partner's orders come first: without isolation they would fill every worker slot.
    await insertOrders(
      database.db,
      Array.from({ length: 5000 }, (_, i) => i + 1),
      broken.url(),
    );
    await insertOrders(
      database.db,
      Array.from({ length: 2000 }, (_, i) => 100_000 + i),
      healthy.url(),
    );
    await Promise.all([spawnDaemon('start', env), spawnDaemon('start', env)]);

    await waitFor('every healthy order delivered', async () => (await count('id >= 100000 AND status = 6')) === 2000, 90_000);

    // Meanwhile the broken partner's orders wait while it is held, nearly all untried.
    expect(await count('id < 100000 AND status = 5')).toBeGreaterThan(4500);
    expect(broken.requests.length).toBeLessThan(300); // the first failures and the probes, not 5,000 timeouts
    // Holding never counts an attempt: none ended 7 before its MAX_ATTEMPTS-th real failure.
    expect(await count(`id < 100000 AND status = 7 AND attempts <> ${MAX_ATTEMPTS}`)).toBe(0);
    expect(await count(`id < 100000 AND attempts > ${MAX_ATTEMPTS}`)).toBe(0);
    const attemptsMade = Number((await database.db.raw('SELECT coalesce(sum(attempts), 0) AS n FROM orders WHERE id < 100000')).rows[0].n);
    expect(attemptsMade).toBe(
      Number(
        (
          await database.db.raw(
            "SELECT count(*) AS n FROM delivery_log WHERE order_id < 100000 AND outcome <> 'released' AND NOT superseded",
          )
        ).rows[0].n,
      ),
    );
    expect(healthy.overlaps.size).toBe(0);
  } finally {
    await stopAllDaemons();
    await Promise.all([healthy.stop(), broken.stop()]);
    await database.drop();
    await obliterateQueue(queueName);
  }
}, 120_000);

describe.each([
  ['refuses connections', 'refused'],
  ['answers 503 to everything', '503'],
] as const)('a partner that %s', (_name, how) => {
  it('is held within seconds by every replica, its backlog left as it is, and delivered within a probe cycle once it is back', async () => {
    const database = await createTestDatabase();
    const queueName = uniqueQueueName();
    const count = countIn(database);
    const port = await freePort();
    let up = false;
    // Refusing: nothing listens on the port until it comes back. 503: it listens, and answers 503 until then.
    let partner = how === '503' ? await new Receiver(() => (up ? { status: 200 } : { status: 503 })).start(port) : undefined;
    const origin = `http://127.0.0.1:${port}`;
    const store = new RedisPartnerStore(redis, queueName, storeTimings(30_000), 2000);
    const MAX_COOLDOWN_MS = 4000;
    const env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
      WORKER_CONCURRENCY: '20',
      MAX_QUEUED_JOBS: '200',
      CALLBACK_TIMEOUT_MS: '1000',
      MAX_ATTEMPTS: '20',
      RETRY_BASE_MS: '200',
      RETRY_MAX_MS: '1000',
      BREAKER_COOLDOWN_MS: '2000',
      BREAKER_MAX_COOLDOWN_MS: String(MAX_COOLDOWN_MS),
    });
    try {
      const ids = Array.from({ length: 3000 }, (_, i) => i + 1);
      await insertOrders(database.db, ids, `${origin}/callback`);
      const started = Date.now();
      const replicas = await Promise.all([spawnDaemon('start', env), spawnDaemon('start', env)]);

      const state = async () => (await store.exchange(origin, readRequest())).state;
      await waitFor('the partner held', async () => ['open', 'half_open'].includes((await state()).state), 10_000, 20);
      expect(Date.now() - started).toBeLessThan(8000); // both replicas started, sent, and held it: seconds
      // Every replica holds it: after the orders queued when it opened were handed back, its orders are
      // neither sent nor written, but for the few probes of each half-open spell.
      await sleep(1500);
      const since = new Date();
      const attemptsBefore = Number((await database.db.raw('SELECT count(*) AS n FROM delivery_log')).rows[0].n);
      await sleep(3000);
      const attempts = Number((await database.db.raw('SELECT count(*) AS n FROM delivery_log')).rows[0].n) - attemptsBefore;
      expect(attempts).toBeLessThanOrEqual(2 * 3); // at most two half-open spells of 3 probes in 3 s
      // Written meanwhile: the probes, and what each producer leased for them (once a second) but found
      // the probe slots taken. Not its backlog of 3,000.
      expect(await count('updated_at > ?', [since])).toBeLessThanOrEqual(3 * 2 * 3);
      expect(await count('status = 5')).toBeGreaterThan(ids.length - 300);
      // Each replica handed orders back because the partner was open, whichever of them opened it.
      const heldByOpen = (line: Record<string, unknown>) =>
        /deferred without an attempt/.test(String(line.msg)) && /^open: /.test(String(line.reason));
      expect(replicas.map((r) => r.lines.some(heldByOpen))).toEqual([true, true]);

      up = true;
      partner ??= await new Receiver(() => ({ status: 200 })).start(port);
      const back = Date.now();
      await waitFor('every order delivered', async () => (await count('status = 6')) === ids.length, 60_000);
      // One probe cycle: the longest opening, its probes, and the drain of the backlog.
      expect(Date.now() - back).toBeLessThan(MAX_COOLDOWN_MS + 10_000);
      expect(await count('attempts > 12')).toBe(0); // held, not retried: a hold counts no attempt
      expect((await state()).state).toBe('closed');
    } finally {
      await stopAllDaemons();
      await partner?.stop();
      await database.drop();
      await obliterateQueue(queueName);
    }
  }, 120_000);
});
