import { createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { spawnDaemon, stopAllDaemons, type ChildDaemon } from '../helpers/daemons';
import { uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { LocalRedisCluster, LocalSentinelSet, redisCommand } from '../helpers/redis-topologies';
import { waitFor } from '../helpers/wait-for';

// Short claims and leases so that recovery happens within the test's patience.
const FAST_RECOVERY = {
  CALLBACK_ALLOW_PRIVATE: 'true',
  POLL_INTERVAL_MS: '100',
  CALLBACK_TIMEOUT_MS: '1000',
  CLAIM_TTL_MS: '3000',
  QUEUE_LEASE_MS: '3000',
  RETRY_BASE_MS: '50',
  RETRY_MAX_MS: '200',
  MAX_ATTEMPTS: '50',
  WORKER_CONCURRENCY: '20',
  MAX_QUEUED_JOBS: '100',
  // Only credentials come from REDIS_URL in a cluster or Sentinel set-up: nothing listens here.
  REDIS_URL: 'redis://127.0.0.1:1',
};

let database: TestDatabase;
let queueName: string;
let receiver: Receiver | undefined;
let cluster: LocalRedisCluster | undefined;
let sentinels: LocalSentinelSet | undefined;

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
});

afterEach(async () => {
  await stopAllDaemons();
  await receiver?.stop();
  await cluster?.stop();
  await sentinels?.stop();
  receiver = cluster = sentinels = undefined;
  await database.drop();
});

function ids(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

const delivered = async () => (await statusCounts(database.db))[6] ?? 0;

function expectEachDeliveredOnce(total: number): void {
  expect(receiver!.overlaps.size).toBe(0);
  const counts = receiver!.countsById();
  expect(counts.size).toBe(total);
  expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
}

function expectAlive(daemons: ChildDaemon[]): void {
  for (const daemon of daemons) expect(daemon.child.exitCode).toBeNull();
}

it('on a Redis Cluster of 3 primaries with 6 shards, 3 replicas deliver every order, one of them killed with SIGKILL mid-run, with partner rate limits on', async () => {
  cluster = await LocalRedisCluster.start(3);
  receiver = await new Receiver(() => ({ status: 200, delayMs: 20 })).start();
  // The rate limit runs its script on the cluster; high enough not to slow the test.
  const env = { ...FAST_RECOVERY, DATABASE_URL: database.url, QUEUE_NAME: queueName, REDIS_CLUSTER_NODES: cluster.seeds, QUEUE_SHARDS: '6', PARTNER_RATE_LIMITS: '127.0.0.1=5000' };
  const replicas = [await spawnDaemon('start', env), await spawnDaemon('start', env), await spawnDaemon('start', env)];
  await insertOrders(database.db, ids(1, 600), receiver.url());
  await waitFor('a quarter delivered', async () => (await delivered()) >= 150);

  replicas[0].signal('SIGKILL');
  await waitFor('every order delivered', async () => (await delivered()) === 600, 60_000);

  expect(receiver.overlaps.size).toBe(0);
  const counts = receiver.countsById();
  expect(counts.size).toBe(600);
  // At least once: a callback the killed replica sent but had not recorded goes out again, at most
  // one per worker it had.
  expect([...counts.values()].filter((n) => n > 1).length).toBeLessThanOrEqual(20);
  expectAlive(replicas.slice(1));

  // Each shard's keys live on the primary that holds its hash tag, and the shards spread over the primaries.
  const owners = new Set<number>();
  for (let shard = 0; shard < 6; shard++) {
    const name = shard === 0 ? queueName : `${queueName}#${shard}`;
    const owner = await cluster.ownerOf(`{${name}}`);
    const keys = await cluster.keysByNode(`bull:{${name}}:*`);
    expect(keys.get(owner.port)).toBeGreaterThan(0);
    expect([...keys].filter(([port, n]) => port !== owner.port && n > 0)).toEqual([]);
    owners.add(owner.port);
  }
  expect(owners.size).toBeGreaterThanOrEqual(2);
  // Every shard was fed and worked: orders of each residue were delivered (ids 1-600 cover them all).
  expect(Number((await database.db.raw('SELECT count(DISTINCT mod(id, 6)) AS n FROM orders WHERE status = 6')).rows[0].n)).toBe(6);
});

it('on a Redis Cluster, the primary holding the queue restarted empty mid-run: every order still ends 6, none delivered twice', async () => {
  cluster = await LocalRedisCluster.start(3);
  receiver = await new Receiver(() => ({ status: 200, delayMs: 10 })).start();
  const env = { ...FAST_RECOVERY, DATABASE_URL: database.url, QUEUE_NAME: queueName, REDIS_CLUSTER_NODES: cluster.seeds };
  const replicas = [await spawnDaemon('start', env), await spawnDaemon('start', env)];
  await insertOrders(database.db, ids(1, 600), receiver.url());
  await waitFor('a third delivered', async () => (await delivered()) >= 200);

  const owner = await cluster.ownerOf(`{${queueName}}`);
  await owner.restartEmpty(300);
  await cluster.waitUntilOk();
  await waitFor('every order delivered', async () => (await delivered()) === 600, 60_000);

  expectEachDeliveredOnce(600);
  expectAlive(replicas);
});

it('Sentinel: a failover in the middle of a run loses nothing, and the daemons carry on against the new primary without a restart', async () => {
  sentinels = await LocalSentinelSet.start();
  receiver = await new Receiver(() => ({ status: 200, delayMs: 10 })).start();
  const env = { ...FAST_RECOVERY, DATABASE_URL: database.url, QUEUE_NAME: queueName, REDIS_SENTINELS: sentinels.addresses, REDIS_SENTINEL_NAME: sentinels.name };
  const replicas = [await spawnDaemon('start', env), await spawnDaemon('start', env)];
  const firstPrimary = await sentinels.primaryPort();
  await insertOrders(database.db, ids(1, 600), receiver.url());
  await waitFor('a third delivered', async () => (await delivered()) >= 200);

  const newPrimary = await sentinels.failover();
  expect(newPrimary).not.toBe(firstPrimary);
  await waitFor('every order delivered', async () => (await delivered()) === 600, 60_000);

  // Orders that arrive after the failover go through the new primary.
  await insertOrders(database.db, ids(601, 100), receiver.url());
  await waitFor('the later orders delivered', async () => (await delivered()) === 700, 30_000);
  expectEachDeliveredOnce(700);
  expectAlive(replicas);
  expect(await redisCommand(newPrimary, 'EXISTS', `bull:${queueName}:order-callbacks:marker`)).toBe(1);
});
