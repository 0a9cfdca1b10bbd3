import { deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { PrivateRedis } from '../helpers/redis-server';
import { sleep, waitFor } from '../helpers/wait-for';

// Redis losing the queue's jobs loses no order: their orders are offered again at once, not when their
// queue leases run out (a minute here, so that waiting for them shows).
let database: TestDatabase;
let redis: PrivateRedis;
let receiver: Receiver;

beforeEach(async () => {
  database = await createTestDatabase();
  redis = await PrivateRedis.start();
  receiver = await new Receiver(() => ({ status: 200, delayMs: 30 })).start();
});

afterEach(async () => {
  await stopAllDaemons();
  await receiver.stop();
  await redis.stop();
  await database.drop();
});

const delivered = async () => Number((await database.db.raw('SELECT count(*) AS n FROM orders WHERE status = 6')).rows[0].n);
const env = () =>
  deliveryEnv(database.url, uniqueQueueName(), redis.url, {
    QUEUE_LEASE_MS: '60000',
    MAX_QUEUED_JOBS: '100',
    WORKER_CONCURRENCY: '10',
    HOST_MAX_IN_FLIGHT: '10',
    LOG_LEVEL: 'info',
  });

it('Redis back with older data (a restore, a lagging replica), its marker intact: the orders whose jobs it lost go out at once', async () => {
  const ids = Array.from({ length: 1200 }, (_, i) => i + 1);
  await insertOrders(database.db, ids, receiver.url());
  const daemon = await spawnDaemon('start', env());
  await waitFor('a first hundred delivered', async () => (await delivered()) >= 100, 30_000, 20);
  await redis.save(); // the marker and the generation as they are now; the jobs queued now
  await waitFor('many more delivered, and jobs queued that the snapshot lacks', async () => (await delivered()) >= 500, 60_000, 20);
  await redis.restartFromSnapshot();
  const restoredAt = Date.now();
  await waitFor('every order delivered', async () => (await delivered()) === ids.length, 60_000, 100);
  // Well before the queue leases of the lost jobs' orders ran out (60 s).
  expect(Date.now() - restoredAt).toBeLessThan(30_000);
  expect(receiver.overlaps.size).toBe(0);
  expect(
    daemon.lines.some(
      (line) => line.msg === 'Redis lost its jobs; their orders are offered again now' && /generation went back/.test(String(line.why)),
    ),
  ).toBe(true);
}, 120_000);

it("forgetting the lost jobs' leases that fails (a row held) is tried again until it succeeds", async () => {
  const ids = Array.from({ length: 600 }, (_, i) => i + 1);
  await insertOrders(database.db, ids, receiver.url());
  const daemon = await spawnDaemon('start', env());
  await waitFor('a first hundred delivered', async () => (await delivered()) >= 100, 30_000, 20);
  const locker = await database.db.client.acquireConnection();
  try {
    await locker.query('BEGIN');
    // One leased order's row held: leases and claims skip it, forgetting the leases must wait for it.
    const { rows: held } = await locker.query(
      'SELECT id FROM orders WHERE status = 5 AND claim_token IS NULL AND lease_until > now() ORDER BY id DESC LIMIT 1 FOR UPDATE',
    );
    expect(held).toHaveLength(1);
    await redis.restartEmpty();
    // A forget waiting on the lock, then longer than it may wait (10 s): it gives up, and is tried again.
    // Asked on another connection: inside the locker's transaction, pg_stat_activity stays as first read.
    await waitFor(
      'the forget waiting on the lock',
      async () => {
        const { rows } = await database.db.raw(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE orders SET lease_until = NULL%'",
        );
        return Number(rows[0].n) > 0;
      },
      30_000,
      50,
    );
    await sleep(11_000);
  } finally {
    await locker.query('ROLLBACK');
    await database.db.client.releaseConnection(locker);
  }
  const releasedAt = Date.now();
  await waitFor('every order delivered', async () => (await delivered()) === ids.length, 60_000, 100);
  expect(Date.now() - releasedAt).toBeLessThan(30_000);
  const offeredAgain = daemon.lines.filter((line) => line.msg === 'Redis lost its jobs; their orders are offered again now');
  expect(offeredAgain).toEqual([
    expect.objectContaining({ why: expect.stringMatching(/^its marker key is gone/), released: expect.any(Number) }),
  ]);
  expect(Number(offeredAgain[0].time)).toBeGreaterThanOrEqual(releasedAt - 100); // once the lock let it, not before
  expect(daemon.lines.some((line) => line.msg === 'background loop run failed; continuing')).toBe(true); // the failed try
}, 120_000);
