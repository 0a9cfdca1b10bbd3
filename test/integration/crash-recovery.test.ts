import { daemonEnv, FAST_RECOVERY, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, statusCounts, terminateConnections, type TestDatabase } from '../helpers/database';
import { insertOrders } from '../helpers/database';
import { obliterateQueue, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { PrivateRedis } from '../helpers/redis-server';
import { sleep, waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let queueName: string;
let receiver: Receiver;

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
});

afterEach(async () => {
  await stopAllDaemons();
  await receiver?.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

function ids(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

async function allFinal(total: number): Promise<boolean> {
  const counts = await statusCounts(database.db);
  return (counts[6] ?? 0) + (counts[7] ?? 0) === total;
}

it('a worker killed with SIGKILL mid-callback leaves its orders deliverable, and another replica delivers them', async () => {
  let firstReplicaAlive = true;
  receiver = await new Receiver(() => (firstReplicaAlive ? { never: true } : { status: 200 })).start();
  const env = daemonEnv(database.url, queueName, FAST_RECOVERY);
  const doomed = await spawnDaemon('start', { ...env, CALLBACK_TIMEOUT_MS: '2000', CLAIM_TTL_MS: '5000' });
  await insertOrders(database.db, ids(1, 30), receiver.url());
  await waitFor('callbacks in flight at the receiver', () => receiver.inFlight() >= 10);

  doomed.signal('SIGKILL');
  expect((await doomed.exited).signal).toBe('SIGKILL');
  firstReplicaAlive = false;
  const claimedByTheDead = await database.db('orders').whereNotNull('claim_token').count<{ count: string }[]>('* as count');
  expect(Number(claimedByTheDead[0].count)).toBeGreaterThanOrEqual(10);

  await spawnDaemon('start', env);
  await waitFor('every order delivered', async () => (await statusCounts(database.db))[6] === 30, 45_000);

  expect(receiver.overlaps.size).toBe(0);
  for (const id of ids(1, 30)) {
    const delivered = receiver.requestsFor(`order-${id}`).filter((r) => r.endedAt);
    expect(delivered).toHaveLength(1);
  }
  // The killed attempts were never recorded: attempts counts only what a live worker finished.
  const attempts = await database.db('orders').max<{ max: number }[]>('attempts as max');
  expect(attempts[0].max).toBe(1);
});

it('Redis restarted empty mid-run: every order still ends 6, none delivered twice', async () => {
  const redis = await PrivateRedis.start();
  try {
    receiver = await new Receiver(() => ({ status: 200, delayMs: 10 })).start();
    const env = daemonEnv(database.url, queueName, { ...FAST_RECOVERY, REDIS_URL: redis.url, MAX_QUEUED_JOBS: '100' });
    await spawnDaemon('start', env);
    await spawnDaemon('start', env);
    await insertOrders(database.db, ids(1, 600), receiver.url());
    await waitFor('a third delivered', async () => ((await statusCounts(database.db))[6] ?? 0) >= 200);

    await redis.restartEmpty(300);
    await waitFor('every order delivered', async () => (await statusCounts(database.db))[6] === 600, 45_000);

    expect(receiver.overlaps.size).toBe(0);
    const counts = receiver.countsById();
    expect(counts.size).toBe(600);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  } finally {
    await stopAllDaemons();
    await redis.stop();
  }
});

it('Postgres connections terminated mid-run: every order still ends 6, with no overlapping deliveries', async () => {
  receiver = await new Receiver(() => ({ status: 200, delayMs: 10 })).start();
  const env = daemonEnv(database.url, queueName, { ...FAST_RECOVERY, MAX_QUEUED_JOBS: '100' });
  await spawnDaemon('start', env);
  await spawnDaemon('start', env);
  await insertOrders(database.db, ids(1, 600), receiver.url());
  for (let i = 0; i < 3; i++) {
    await waitFor('progress', async () => ((await statusCounts(database.db))[6] ?? 0) >= 100 * (i + 1));
    await terminateConnections(database.name);
  }
  // The test's own pool lost its connections too; knex replaces them.
  await waitFor('every order final', () => allFinal(600), 45_000);

  expect((await statusCounts(database.db))[6]).toBe(600);
  expect(receiver.overlaps.size).toBe(0);
  expect(receiver.countsById().size).toBe(600);
});

it('a claim cut off with its connection is asked again, not left until its queue lease runs out', async () => {
  receiver = await new Receiver(() => ({ status: 200 })).start();
  // A queue lease far longer than the test waits: an order whose claim failed and was left to it would
  // come back only after a minute.
  const env = daemonEnv(database.url, queueName, { ...FAST_RECOVERY, QUEUE_LEASE_MS: '60000' });
  await insertOrders(database.db, ids(1, 40), receiver.url());
  const producer = await spawnDaemon('producer', env);
  await waitFor(
    'every order queued',
    async () => Number((await database.db.raw('SELECT count(*) AS n FROM orders WHERE lease_until > now()')).rows[0].n) === 40,
  );
  // Gone before the lock is taken, so that what waits on it is the worker's claims and nothing else.
  producer.signal('SIGTERM');
  await producer.exited;

  // Claims wait behind a lock, then lose their connections while they wait (a failover, a pooler restart).
  const lock = await database.db.transaction();
  await lock.raw('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
  await spawnDaemon('worker', env);
  const waitingOnLock = async () =>
    Number(
      (await database.db.raw("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = ? AND wait_event_type = 'Lock'", [database.name]))
        .rows[0].n,
    );
  await waitFor('claims waiting on the lock', async () => (await waitingOnLock()) > 0);
  await terminateConnections(database.name);
  await lock.rollback().catch(() => undefined);

  await waitFor('every order delivered', async () => ((await statusCounts(database.db))[6] ?? 0) === 40, 15_000);
  expect(receiver.overlaps.size).toBe(0);
});

it('a job whose lock expires while its callback is in flight is not delivered a second time (the claim fences it)', async () => {
  receiver = await new Receiver(() => ({ status: 200, delayMs: 8000 })).start();
  const env = daemonEnv(database.url, queueName, {
    ...FAST_RECOVERY,
    CALLBACK_TIMEOUT_MS: '15000',
    CLAIM_TTL_MS: '30000',
    // BullMQ's lock lapses after a second without renewal; the stopped process cannot renew it.
    JOB_LOCK_MS: '1000',
  });
  const paused = await spawnDaemon('start', env);
  await insertOrders(database.db, [42], receiver.url());
  await waitFor('the callback in flight', () => receiver.inFlight() === 1);
  paused.signal('SIGSTOP'); // a blocked event loop, a GC pause, a VM migration: no lock renewal

  const rescuer = await spawnDaemon('worker', env);
  // The rescuer's stalled check hands it the job; its claim is refused because ours is still live.
  await rescuer.waitForLog(
    'the rescuer to find the order claimed',
    (l) => l.orderId === '42' && /not claimable/.test(String(l.msg)),
    20_000,
  );
  expect(receiver.inFlight()).toBe(1);
  paused.signal('SIGCONT');

  await waitFor('order 42 delivered', async () => (await statusCounts(database.db))[6] === 1, 20_000);
  await sleep(500);
  expect(receiver.requests).toHaveLength(1);
  expect(receiver.overlaps.size).toBe(0);
  const log = await database.db('delivery_log').where({ order_id: 42 });
  expect(log).toMatchObject([{ attempt: 1, outcome: 'delivered', superseded: false }]);
});
