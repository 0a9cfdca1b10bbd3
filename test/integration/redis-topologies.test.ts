import { connectRedis } from '../../src/queue/redis-topology';
import { runCli } from '../helpers/cli';
import { type ChildDaemon, FAST_RECOVERY, spawnDaemon, stopAllDaemons, TEST_SECRET } from '../helpers/daemons';
import { createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { freePort } from '../helpers/free-port';
import { uniqueQueueName } from '../helpers/queue';
import { expectEachDeliveredOnce, Receiver } from '../helpers/receiver';
import { LocalRedisCluster, LocalSentinelSet, redisCommand } from '../helpers/redis-topologies';
import { sleep, waitFor } from '../helpers/wait-for';

const CLUSTER_RECOVERY = {
  ...FAST_RECOVERY,
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

function expectAlive(daemons: ChildDaemon[]): void {
  for (const daemon of daemons) expect(daemon.child.exitCode).toBeNull();
}

it('on a Redis Cluster of 3 primaries with 6 shards, 3 replicas deliver every order, one of them killed with SIGKILL mid-run, with partner rate limits on', async () => {
  cluster = await LocalRedisCluster.start(3);
  receiver = await new Receiver(() => ({ status: 200, delayMs: 20 })).start();
  // The rate limit runs its script on the cluster; high enough not to slow the test.
  const env = {
    ...CLUSTER_RECOVERY,
    DATABASE_URL: database.url,
    QUEUE_NAME: queueName,
    REDIS_CLUSTER_NODES: cluster.seeds,
    QUEUE_SHARDS: '6',
    PARTNER_RATE_LIMITS: '127.0.0.1=5000',
  };
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
  const env = { ...CLUSTER_RECOVERY, DATABASE_URL: database.url, QUEUE_NAME: queueName, REDIS_CLUSTER_NODES: cluster.seeds };
  const replicas = [await spawnDaemon('start', env), await spawnDaemon('start', env)];
  await insertOrders(database.db, ids(1, 600), receiver.url());
  await waitFor('a third delivered', async () => (await delivered()) >= 200);

  const owner = await cluster.ownerOf(`{${queueName}}`);
  await owner.restartEmpty(300);
  await cluster.waitUntilOk();
  await waitFor('every order delivered', async () => (await delivered()) === 600, 60_000);

  expectEachDeliveredOnce(receiver, 600);
  expectAlive(replicas);
});

it('Sentinel: a failover in the middle of a run loses nothing, and the daemons carry on against the new primary without a restart', async () => {
  sentinels = await LocalSentinelSet.start();
  receiver = await new Receiver(() => ({ status: 200, delayMs: 10 })).start();
  const env = {
    ...CLUSTER_RECOVERY,
    DATABASE_URL: database.url,
    QUEUE_NAME: queueName,
    REDIS_SENTINELS: sentinels.addresses,
    REDIS_SENTINEL_NAME: sentinels.name,
  };
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
  expectEachDeliveredOnce(receiver, 700);
  expectAlive(replicas);
  expect(await redisCommand(newPrimary, 'EXISTS', `bull:${queueName}:order-callbacks:marker`)).toBe(1);
});

it('on a Redis Cluster with 4 shards, stats, inspect, partners and requeue see every shard', async () => {
  cluster = await LocalRedisCluster.start(3);
  const env = {
    ...CLUSTER_RECOVERY,
    DATABASE_URL: database.url,
    QUEUE_NAME: queueName,
    REDIS_CLUSTER_NODES: cluster.seeds,
    QUEUE_SHARDS: '4',
    CALLBACK_SECRET: TEST_SECRET,
  };
  // A producer and no worker: the jobs stay in their shards' queues.
  const producer = await spawnDaemon('producer', env);
  await insertOrders(database.db, ids(1, 40), 'http://127.0.0.1:9/callback');
  await waitFor(
    'every order queued',
    async () => Number((await database.db.raw('SELECT count(*) AS n FROM orders WHERE lease_until > now()')).rows[0].n) === 40,
  );

  const stats = await runCli(['stats', '--json'], env);
  expect({ code: stats.code, stderr: stats.stderr }).toEqual({ code: 0, stderr: '' });
  const parsed = JSON.parse(stats.stdout);
  expect(parsed.queue.waiting).toBe(40);
  expect(Object.values(parsed.shards).map((depths) => (depths as { waiting: number }).waiting)).toEqual([10, 10, 10, 10]);
  expect(Object.keys(parsed.shards)).toEqual([queueName, `${queueName}#1`, `${queueName}#2`, `${queueName}#3`]);

  const inspect = await runCli(['inspect', '7', '--json'], env);
  expect(inspect.code).toBe(0);
  expect(JSON.parse(inspect.stdout).job).toBe('waiting');

  const pause = await runCli(['partners', 'pause', 'http://127.0.0.1:9', '--json', '--actor', 'test'], env);
  expect({ code: pause.code, stderr: pause.stderr }).toEqual({ code: 0, stderr: '' });
  const partners = await runCli(['partners', '--json'], env);
  expect(partners.code).toBe(0);
  expect(partners.stdout).toContain('http://127.0.0.1:9');

  await database.db('orders').where({ id: 3 }).update({ status: 7 });
  const requeue = await runCli(['requeue', '--id', '3', '--actor', 'test'], env);
  expect(requeue.code).toBe(0);
  expect((await database.db('orders').where({ id: 3 }).first()).status).toBe(5);
  expect(producer.child.exitCode).toBeNull();
});

it('a bounded cluster client gives up on a command at its timeout while no node answers, instead of queuing it for ever', async () => {
  const nowhere = await freePort();
  const redis = connectRedis(
    { kind: 'cluster', nodes: [{ host: '127.0.0.1', port: nowhere }], auth: { db: 0, tls: false } },
    { commandTimeout: 500, maxRetriesPerRequest: 1 },
  );
  redis.on('error', () => undefined);
  try {
    const outcome = await Promise.race([
      redis.get('x').then(
        () => 'answered',
        (err: Error) => err.message,
      ),
      sleep(5000).then(() => 'still waiting'),
    ]);
    expect(outcome).toBe('Command timed out');
  } finally {
    redis.disconnect();
  }
});
