import { Queue } from 'bullmq';

import { countUnfinishedJobs, redisConnection } from '../../src/queue/callback-queue';
import { type ChildDaemon, daemonEnv, FAST_RECOVERY, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { expectEachDeliveredOnce, Receiver } from '../helpers/receiver';
import { sleep, waitFor } from '../helpers/wait-for';

const SHARD_RECOVERY = { ...FAST_RECOVERY, PRODUCER_LEASE_MS: '2000', MAX_QUEUED_JOBS: '100' };

let database: TestDatabase;
let queueName: string;
let receiver: Receiver | undefined;

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
});

afterEach(async () => {
  await stopAllDaemons();
  await receiver?.stop();
  receiver = undefined;
  await database.drop();
  for (let shard = 0; shard < 4; shard++) await obliterateQueue(shard === 0 ? queueName : `${queueName}#${shard}`);
});

const ids = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);
const delivered = async () => (await statusCounts(database.db))[6] ?? 0;
const env = (extra: Record<string, string> = {}) => daemonEnv(database.url, queueName, { ...SHARD_RECOVERY, ...extra });

it('going from 1 shard to 4 on a running system loses and duplicates nothing', async () => {
  receiver = await new Receiver(() => ({ status: 200, delayMs: 10 })).start();
  const before = [await spawnDaemon('start', env()), await spawnDaemon('start', env())];
  await insertOrders(database.db, ids(1, 800), receiver.url());
  await waitFor('a quarter delivered', async () => (await delivered()) >= 200);

  // The documented procedure: the replicas are restarted one by one with the new setting. Jobs left in
  // the queue of shard 0 (QUEUE_NAME itself) are worked by the new replicas' shard 0.
  for (const daemon of before) {
    daemon.signal('SIGTERM');
    await daemon.exited;
    await spawnDaemon('start', env({ QUEUE_SHARDS: '4' }));
  }
  await insertOrders(database.db, ids(801, 200), receiver.url());
  await waitFor('every order delivered', async () => (await delivered()) === 1000, 60_000);
  expectEachDeliveredOnce(receiver, 1000);
  // No job was left behind in the queue of the one shard there was.
  const queue = new Queue(queueName, { connection: redisConnection(SHARED_REDIS_URL) });
  try {
    await waitFor('the first queue empty', async () => (await countUnfinishedJobs(queue)) === 0, 10_000);
  } finally {
    await queue.close();
  }
  // Every shard was produced by the new replicas.
  const leases = await database.db('producer_leases').pluck('name');
  expect(leases.sort()).toEqual(
    expect.arrayContaining([`producer:${queueName}`, `producer:${queueName}#1`, `producer:${queueName}#2`, `producer:${queueName}#3`]),
  );
});

it('a replica frozen (SIGSTOP) while it produces shards: another produces them within seconds, and orders arriving meanwhile are picked up with p99 under 10 s', async () => {
  receiver = await new Receiver(() => ({ status: 200 })).start();
  const replicas = new Map<number, ChildDaemon>();
  for (let i = 0; i < 3; i++) {
    const daemon = await spawnDaemon('start', env({ QUEUE_SHARDS: '4' }));
    replicas.set(daemon.pid, daemon);
  }
  // A steady stream, so that shards' leases are held while runs follow each other.
  const insertedAt = new Map<string, number>();
  let next = 1;
  let streaming = true;
  const stream = (async () => {
    while (streaming) {
      const batch = ids(next, 10);
      next += 10;
      await insertOrders(database.db, batch, receiver.url());
      for (const id of batch) insertedAt.set(`order-${id}`, Date.now());
      await sleep(100);
    }
  })();
  // Freeze a replica that holds a shard's lease now.
  let frozen: ChildDaemon | undefined;
  await waitFor('a replica holding a shard lease', async () => {
    const holders: string[] = await database.db('producer_leases').whereRaw('expires_at > now()').pluck('holder');
    const pid = holders.map((h) => Number(h.split(':').pop())).find((p) => replicas.has(p));
    frozen = pid === undefined ? undefined : replicas.get(pid);
    return frozen !== undefined;
  });
  const frozenAt = Date.now();
  frozen!.signal('SIGSTOP');
  try {
    await sleep(8000);
    streaming = false;
    await stream;
    const total = next - 1;
    await waitFor('every order delivered', async () => (await delivered()) === total, 30_000);

    // Every shard's lease moved to a replica that is not frozen.
    const holders: { name: string; holder: string }[] = await database.db('producer_leases').select('name', 'holder');
    expect(holders.map((l) => l.name).sort()).toEqual([
      `producer:${queueName}`,
      `producer:${queueName}#1`,
      `producer:${queueName}#2`,
      `producer:${queueName}#3`,
    ]);
    expect(holders.filter((l) => l.holder.endsWith(`:${frozen!.pid}`))).toEqual([]);
    const pickup: number[] = [];
    for (const [webhookId, at] of insertedAt) {
      if (at < frozenAt) continue;
      const first = receiver.requestsFor(webhookId)[0];
      pickup.push(first.startedAt - at);
    }
    pickup.sort((a, b) => a - b);
    const p99 = pickup[Math.floor(pickup.length * 0.99)];
    expect(pickup.length).toBeGreaterThan(50);
    expect(p99).toBeLessThan(10_000);
    expect(receiver.overlaps.size).toBe(0);
  } finally {
    frozen!.signal('SIGCONT');
  }
});

it('orders with negative ids belong to a shard like any other and are delivered', async () => {
  receiver = await new Receiver(() => ({ status: 200 })).start();
  await spawnDaemon('start', env({ QUEUE_SHARDS: '4' }));
  await insertOrders(database.db, [...ids(-40, 40), ...ids(1, 40)], receiver.url());
  await waitFor('every order delivered', async () => (await delivered()) === 80, 30_000);
  expectEachDeliveredOnce(receiver, 80);
});
