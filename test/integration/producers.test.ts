import { Queue } from 'bullmq';
import { countUnfinishedJobs, redisConnection } from '../../src/queue/callback-queue';
import { createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { spawnDaemon, startTestDaemon, stopAllDaemons } from '../helpers/daemons';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let queueName: string;
let queue: Queue;
let receiver: Receiver | undefined;

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
  queue = new Queue(queueName, { connection: redisConnection(SHARED_REDIS_URL) });
});

afterEach(async () => {
  await stopAllDaemons();
  await receiver?.stop();
  await queue.close();
  await database.drop();
  await obliterateQueue(queueName);
});

const ids = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

it('two producers at once enqueue every ready order exactly once', async () => {
  const env = { DATABASE_URL: database.url, REDIS_URL: SHARED_REDIS_URL, QUEUE_NAME: queueName, POLL_INTERVAL_MS: '50', PRODUCER_PAGE_SIZE: '37', MAX_QUEUED_JOBS: '5000' };
  await Promise.all([spawnDaemon('producer', env), spawnDaemon('producer', env)]);
  await insertOrders(database.db, ids(1500), 'http://127.0.0.1:9/unused');

  const jobs = await waitFor('1500 jobs', async () => {
    const waiting = await queue.getWaiting(0, -1);
    return waiting.length >= 1500 ? waiting : undefined;
  });
  // Give a duplicate, if there were one, the time to show up.
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(await queue.getWaitingCount()).toBe(1500);
  expect(new Set(jobs.map((j) => j.data.orderId)).size).toBe(1500);
  expect(jobs.every((j) => j.id === `order-${j.data.orderId}`)).toBe(true);
});

it('a backlog larger than MAX_QUEUED_JOBS never holds more than that many jobs in Redis, and all of it is delivered once', async () => {
  receiver = await new Receiver(() => ({ status: 200, delayMs: 2 })).start();
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: SHARED_REDIS_URL,
    QUEUE_NAME: queueName,
    CALLBACK_ALLOW_PRIVATE: 'true',
    POLL_INTERVAL_MS: '50',
    MAX_QUEUED_JOBS: '25',
    WORKER_CONCURRENCY: '10',
  };
  await Promise.all([spawnDaemon('start', env), spawnDaemon('start', env)]);
  await insertOrders(database.db, ids(3000), receiver.url());

  let most = 0;
  let done = false;
  const sampling = (async () => {
    while (!done) {
      most = Math.max(most, await countUnfinishedJobs(queue));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  try {
    await waitFor('the backlog delivered', async () => (await statusCounts(database.db))[6] === 3000, 120_000);
  } finally {
    done = true;
    await sampling;
  }
  expect(most).toBeGreaterThan(0);
  expect(most).toBeLessThanOrEqual(25);
  expect(receiver.overlaps.size).toBe(0);
  expect([...receiver.countsById().values()].every((n) => n === 1)).toBe(true);
  expect(receiver.countsById().size).toBe(3000);
});

it('the producer reads the ready index with a keyset, not the whole table', async () => {
  await insertOrders(database.db, ids(20_000), 'http://127.0.0.1:9/unused', {}, 6);
  await insertOrders(database.db, [50_001, 50_002], 'http://127.0.0.1:9/unused');
  await database.db.raw('ANALYZE orders');
  const producer = await startTestDaemon('producer', {
    DATABASE_URL: database.url,
    REDIS_URL: SHARED_REDIS_URL,
    QUEUE_NAME: queueName,
    LOG_LEVEL: 'debug',
  });
  await waitFor('both enqueued', async () => (await queue.getWaitingCount()) === 2);
  await producer.stop();

  const plan = await database.db.raw(`
    EXPLAIN SELECT id FROM orders
     WHERE status = 5 AND GREATEST(next_attempt_at, lease_until) <= now()
       AND (GREATEST(next_attempt_at, lease_until), id) > (now() - interval '1 hour', 0::bigint)
     ORDER BY GREATEST(next_attempt_at, lease_until), id LIMIT 500`);
  const text = plan.rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']).join('\n');
  expect(text).toMatch(/orders_ready_idx/);
  expect(text).not.toMatch(/Seq Scan/);
});
