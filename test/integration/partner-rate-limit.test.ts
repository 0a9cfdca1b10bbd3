import { deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { attemptsHistogram, createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

// PARTNER_RATE_LIMITS holds across replicas: two workers together send a partner at most its limit per
// second; the orders over it wait in Postgres, and a wait is not an attempt.
let database: TestDatabase;
let partner: Receiver;
const queueName = uniqueQueueName();

beforeAll(async () => {
  database = await createTestDatabase();
  partner = await new Receiver(() => ({ status: 200 })).start();
});

afterAll(async () => {
  await stopAllDaemons();
  await partner.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

it('two replicas together send a rate-limited partner at most its limit per second, and deliver every order once', async () => {
  const LIMIT = 25;
  const ids = Array.from({ length: 150 }, (_, i) => i + 1);
  const env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
    PARTNER_RATE_LIMITS: `127.0.0.1=${LIMIT}`,
    LOG_LEVEL: 'info',
  });
  await Promise.all([spawnDaemon('start', env), spawnDaemon('start', env)]);
  await insertOrders(database.db, ids, partner.url());

  await waitFor('every order delivered', async () => (await statusCounts(database.db))[6] === ids.length, 60_000);
  const perSecond = new Map<number, number>();
  for (const request of partner.requests) {
    const second = Math.floor(request.startedAt / 1000);
    perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
  }
  // The limit counts calendar seconds of Redis' clock at sending; arrivals are read here, late by
  // however long a busy machine takes to carry a request. So: never more than two seconds' worth in one
  // second of arrivals (the edge of one second and the start of the next), and, the real measure, the
  // whole took at least as many seconds as the limit demands.
  expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(2 * LIMIT);
  const arrivals = partner.requests.map((request) => request.startedAt);
  expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeGreaterThanOrEqual((ids.length / LIMIT - 1) * 1000);
  expect(partner.countsById()).toEqual(new Map(ids.map((id) => [`order-${id}`, 1])));
  expect(await attemptsHistogram(database.db)).toEqual({ 1: ids.length });
}, 90_000);
