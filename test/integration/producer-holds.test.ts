import { Redis } from 'ioredis';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { deliveryEnv, startTestDaemon, stopAllDaemons } from '../helpers/daemons';
import { freePort } from '../helpers/free-port';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let partner: Receiver;
let redis: Redis;
let queueName: string;

beforeAll(() => {
  redis = new Redis(SHARED_REDIS_URL);
});

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
});

afterEach(async () => {
  await stopAllDaemons();
  await partner.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

afterAll(() => redis.disconnect());

const count = async (where: string) => Number((await database.db.raw(`SELECT count(*) AS n FROM orders WHERE ${where}`)).rows[0].n);
/** Jobs ever added to the queue: BullMQ counts every add in this key, custom job ids included. */
const jobsAdded = async () => Number((await redis.get(`bull:${queueName}:id`)) ?? 0);
const heldBeforeQueue = async (metricsPort: number) => {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return Number(/^order_callbacks_held_before_queue_total (\d+)$/m.exec(text)?.[1]);
};

it("the producer defers a held partner's new orders itself, without queuing a job for each", async () => {
  partner = await new Receiver(() => ({ status: 500 })).start();
  const metricsPort = await freePort();
  const daemon = await startTestDaemon('start', deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
    METRICS_PORT: String(metricsPort),
    BREAKER_FAILURE_THRESHOLD: '1',
    BREAKER_COOLDOWN_MS: '60000',
    RETRY_BASE_MS: '60000',
    RETRY_MAX_MS: '60000',
  }));
  // One failure opens the partner's circuit for a minute.
  await insertOrders(database.db, [1], partner.url());
  await waitFor('the first attempt made', async () => (await count('id = 1 AND attempts = 1')) === 1, 10_000);
  // And the backlog hold that comes with the opening done, so the orders below meet only the producer.
  await waitFor('the circuit-open hold done', async () => daemon.logs.lines.some((line) => line.why === 'circuit open'), 10_000);
  const addedBefore = await jobsAdded();

  // Orders that become ready while the circuit is open: none may reach the queue only to be handed back.
  const ids = Array.from({ length: 1000 }, (_, i) => 100 + i);
  await insertOrders(database.db, ids, partner.url());
  await waitFor(
    'every new order deferred',
    async () => (await count("id >= 100 AND status = 5 AND next_attempt_at > now() + interval '10 seconds'")) === ids.length,
    20_000,
  );
  expect((await jobsAdded()) - addedBefore).toBe(0);
  expect(partner.requests.length).toBe(1);
  expect(await count('id >= 100 AND (attempts > 0 OR claim_token IS NOT NULL OR lease_until IS NOT NULL)')).toBe(0);
  // Counted when the producer's run ends, moments after its last statement.
  await waitFor('the held orders counted', async () => (await heldBeforeQueue(metricsPort)) === ids.length, 5_000);
}, 60_000);

it('a partner that answers, slowly, at this process\'s cap keeps its orders in the queue: another replica may have room', async () => {
  partner = await new Receiver(() => ({ status: 200, delayMs: 300 })).start();
  const metricsPort = await freePort();
  await startTestDaemon('start', deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
    METRICS_PORT: String(metricsPort),
    WORKER_CONCURRENCY: '20',
    HOST_MAX_IN_FLIGHT: '2',
  }));
  await insertOrders(database.db, [1], partner.url());
  await waitFor('the partner answered once', async () => (await count('id = 1 AND status = 6')) === 1, 10_000);

  // Beyond the cap, attempts hand orders back for about an answer time, and the producer leases them
  // again while the cap is taken; it queues them, as the partner answers.
  const ids = Array.from({ length: 30 }, (_, i) => 100 + i);
  await insertOrders(database.db, ids, partner.url());
  await waitFor('every order delivered', async () => (await count('id >= 100 AND status = 6')) === ids.length, 30_000);
  expect(await heldBeforeQueue(metricsPort)).toBe(0);
  expect(partner.peakInFlight).toBe(2); // the cap was reached, so the producer did ask
}, 60_000);
