import { Redis } from 'ioredis';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { deliveryEnv, startTestDaemon, stopAllDaemons } from '../helpers/daemons';
import { freePort } from '../helpers/free-port';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let failing: Receiver;
let redis: Redis;
const queueName = uniqueQueueName();

beforeAll(async () => {
  database = await createTestDatabase();
  failing = await new Receiver(() => ({ status: 500 })).start();
  redis = new Redis(SHARED_REDIS_URL);
});

afterAll(async () => {
  await stopAllDaemons();
  await failing.stop();
  redis.disconnect();
  await database.drop();
  await obliterateQueue(queueName);
});

const count = async (where: string) => Number((await database.db.raw(`SELECT count(*) AS n FROM orders WHERE ${where}`)).rows[0].n);
/** Jobs ever added to the queue: BullMQ counts every add in this key, custom job ids included. */
const jobsAdded = async () => Number((await redis.get(`bull:${queueName}:id`)) ?? 0);

it("the producer defers a held partner's new orders itself, without queuing a job for each", async () => {
  const metricsPort = await freePort();
  const daemon = await startTestDaemon('start', deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
    METRICS_PORT: String(metricsPort),
    BREAKER_FAILURE_THRESHOLD: '1',
    BREAKER_COOLDOWN_MS: '60000',
    RETRY_BASE_MS: '60000',
    RETRY_MAX_MS: '60000',
  }));
  // One failure opens the partner's circuit for a minute.
  await insertOrders(database.db, [1], failing.url());
  await waitFor('the first attempt made', async () => (await count('id = 1 AND attempts = 1')) === 1, 10_000);
  // And the backlog hold that comes with the opening done, so the orders below meet only the producer.
  await waitFor('the circuit-open hold done', async () => daemon.logs.lines.some((line) => line.why === 'circuit open'), 10_000);
  const addedBefore = await jobsAdded();

  // Orders that become ready while the circuit is open: none may reach the queue only to be handed back.
  const ids = Array.from({ length: 1000 }, (_, i) => 100 + i);
  await insertOrders(database.db, ids, failing.url());
  await waitFor(
    'every new order deferred',
    async () => (await count("id >= 100 AND status = 5 AND next_attempt_at > now() + interval '10 seconds'")) === ids.length,
    20_000,
  );
  expect((await jobsAdded()) - addedBefore).toBe(0);
  expect(failing.requests.length).toBe(1);
  expect(await count('id >= 100 AND (attempts > 0 OR claim_token IS NOT NULL OR lease_until IS NOT NULL)')).toBe(0);
  // Counted when the producer's run ends, moments after its last statement.
  const counted = new RegExp(`^order_callbacks_held_before_queue_total ${ids.length}$`, 'm');
  await waitFor('the held orders counted', async () => counted.test(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()), 5_000);
}, 60_000);
