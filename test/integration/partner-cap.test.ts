import { deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { attemptsHistogram, createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

// Many more workers than one partner may use, in three replicas: the cap (HOST_MAX_IN_FLIGHT) is the
// partner's, across all of them. Orders beyond it wait for a slot or are handed back, and either way
// each is delivered once, with one attempt.
let database: TestDatabase;
let partner: Receiver;
const queueName = uniqueQueueName();

beforeAll(async () => {
  database = await createTestDatabase();
  partner = await new Receiver(() => ({ status: 200, delayMs: 20 })).start();
});

afterAll(async () => {
  await stopAllDaemons();
  await partner.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

it('a partner at its in-flight cap gets at most the cap at once from all replicas together, and every order is delivered once with one attempt', async () => {
  const ids = Array.from({ length: 600 }, (_, i) => i + 1);
  await insertOrders(database.db, ids, partner.url());
  const env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
    WORKER_CONCURRENCY: '50',
    HOST_MAX_IN_FLIGHT: '4',
    LOG_LEVEL: 'info',
  });
  await Promise.all([spawnDaemon('start', env), spawnDaemon('start', env), spawnDaemon('start', env)]);

  await waitFor('every order delivered', async () => (await statusCounts(database.db))[6] === ids.length, 60_000);
  expect(partner.peakInFlight).toBeLessThanOrEqual(4);
  expect(partner.peakInFlight).toBe(4); // and the cap was reached: this test did exercise waiting at it
  expect(partner.countsById()).toEqual(new Map(ids.map((id) => [`order-${id}`, 1])));
  expect(await attemptsHistogram(database.db)).toEqual({ 1: ids.length });
  const log = await database.db('delivery_log').count('* as n').where({ superseded: false, outcome: 'delivered' });
  expect(Number(log[0].n)).toBe(ids.length);
  // All three took part.
  const workers = await database.db('delivery_log').distinct('worker');
  expect(workers.length).toBe(3);
}, 90_000);
