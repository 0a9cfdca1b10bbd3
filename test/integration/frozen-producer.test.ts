import { deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { sleep, waitFor } from '../helpers/wait-for';

// No single process can stop enqueueing for everyone: a replica frozen while it holds the producer
// lease loses it when it runs out, and another replica picks up the orders that arrive meanwhile.
let database: TestDatabase;
let receiver: Receiver;
const queueName = uniqueQueueName();

beforeAll(async () => {
  database = await createTestDatabase();
  receiver = await new Receiver().start();
});

afterAll(async () => {
  await stopAllDaemons();
  await receiver.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

it('with the producer lease holder frozen, orders arriving meanwhile are picked up by another replica: p99 under 10 s', async () => {
  const env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, { PRODUCER_LEASE_MS: '3000', LOG_LEVEL: 'info' });
  const replicas = await Promise.all([spawnDaemon('start', env), spawnDaemon('start', env)]);

  // Orders arrive at 20 a second throughout; when each was inserted, by this process's clock (the receiver's).
  const insertedAt = new Map<number, number>();
  let next = 1;
  let arriving = true;
  const arrivals = (async () => {
    while (arriving) {
      insertedAt.set(next, Date.now());
      await insertOrders(database.db, [next], receiver.url());
      next += 1;
      await sleep(50);
    }
  })();

  try {
    // The replica holding the lease right now, frozen at once.
    const holder = await waitFor(
      'a lease holder',
      async () => {
        const { rows } = await database.db.raw('SELECT holder FROM producer_leases WHERE expires_at > now()');
        return rows[0]?.holder as string | undefined;
      },
      10_000,
      20,
    );
    const frozen = replicas.find((r) => holder.endsWith(`:${r.pid}`))!;
    frozen.signal('SIGSTOP');
    const frozenAt = Date.now();
    const firstAfter = next;
    await sleep(8000);
    arriving = false;
    await arrivals;

    const after = [...insertedAt].filter(([id]) => id > firstAfter);
    await waitFor(
      'every order that arrived after the freeze delivered',
      () => after.every(([id]) => receiver.requestsFor(`order-${id}`).length > 0),
      30_000,
    );
    const pickups = after.map(([id, at]) => receiver.requestsFor(`order-${id}`)[0].startedAt - at).sort((a, b) => a - b);
    const p99 = pickups[Math.ceil(pickups.length * 0.99) - 1];
    expect(after.length).toBeGreaterThan(100);
    expect(p99).toBeLessThan(10_000);
    // And it was the other replica's producer: it holds the lease now.
    const { rows } = await database.db.raw('SELECT holder FROM producer_leases');
    expect(Date.now() - frozenAt).toBeGreaterThan(3000);
    expect(rows[0]?.holder).not.toBe(holder);
  } finally {
    arriving = false;
    await arrivals;
  }
}, 90_000);
