import { randomUUID } from 'node:crypto';

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

import { LEASE_BY_PARTNER_SQL, leaseSql } from '../../src/db/lease-ready-orders';
import { positionalParameters } from '../../src/db/prepared-statement';
import { type ProducerFence, takeProducerLease } from '../../src/db/producer-lease';
import { createLogger } from '../../src/observability/logger';
import { enqueueReadyOrders } from '../../src/producer/enqueue-ready-orders';
import { countUnfinishedJobs, redisConnection } from '../../src/queue/callback-queue';
import { RedisLossDetector } from '../../src/queue/redis-reset-detector';
import { daemonEnv, spawnDaemon, startTestDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { PrivateRedis } from '../helpers/redis-server';
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
/** Every order in one shard, as with the default QUEUE_SHARDS. */
const ONE_SHARD = { index: 0, count: 1 };

/** The producer lease, taken as a producer takes it: what a run must hold to lease orders. */
async function heldLease(): Promise<ProducerFence> {
  const fence = { name: `producer:${queueName}`, token: randomUUID() };
  expect(await takeProducerLease(database.db, fence, 'test', 60_000)).toBe(true);
  return fence;
}
const FENCE_VALUES = `'producer:none', '00000000-0000-4000-8000-000000000000'`;

it('two producers at once enqueue every ready order exactly once', async () => {
  const env = daemonEnv(database.url, queueName, { POLL_INTERVAL_MS: '50', PRODUCER_PAGE_SIZE: '37', MAX_QUEUED_JOBS: '5000' });
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

it('a producer keeps its lease only while runs follow each other: soon after the last orders it lets go, though its next poll is a minute away', async () => {
  const env = daemonEnv(database.url, queueName, { POLL_INTERVAL_MS: '60000' });
  await spawnDaemon('producer', env);
  await insertOrders(database.db, ids(20), 'http://127.0.0.1:9/unused');
  await waitFor('20 jobs', async () => (await queue.getWaitingCount()) >= 20);
  // Held for at most a second after it was taken, then one more run finds nothing and lets it go.
  const another = { name: `producer:${queueName}`, token: randomUUID() };
  await waitFor('the producer lease free for another replica', () => takeProducerLease(database.db, another, 'another', 60_000), 10_000);
});

it('a lease statement whose producer lease is not current leases nothing', async () => {
  await insertOrders(database.db, ids(5), 'http://127.0.0.1:9/unused');
  const mine = await heldLease();
  const stale = { name: mine.name, token: randomUUID() }; // a producer that lost its turn while it was paused
  const deps = {
    db: database.db,
    queue,
    config: { maxQueuedJobs: 100, producerPageSize: 10, queueLeaseMs: 60_000 },
    logger: createLogger('silent'),
    redisLoss: new RedisLossDetector(queue, database.db),
    shard: ONE_SHARD,
  };
  expect(await enqueueReadyOrders({ ...deps, fence: stale })).toMatchObject({ enqueued: 0 });
  await database.db.raw('UPDATE producer_leases SET expires_at = now() WHERE name = ?', [mine.name]); // ours ran out
  expect(await enqueueReadyOrders({ ...deps, fence: mine })).toMatchObject({ enqueued: 0 });
  expect(await takeProducerLease(database.db, mine, 'test', 60_000)).toBe(true);
  expect(await enqueueReadyOrders({ ...deps, fence: mine })).toMatchObject({ enqueued: 5 });
});

it("a run leases its next page while the previous page's jobs are on their way to Redis", async () => {
  const redis = await PrivateRedis.start();
  const slow = new Queue(queueName, { connection: redisConnection(redis.url) });
  const pauser = new Redis(redis.url);
  const leases: number[] = [];
  try {
    await insertOrders(database.db, ids(300), 'http://127.0.0.1:9/unused');
    await slow.waitUntilReady();
    // Each page's leases counted when its jobs were handed to Redis and when Redis took them.
    const adds: { leasedBefore: number; leasedAfter?: number }[] = [];
    const addBulk = slow.addBulk.bind(slow);
    slow.addBulk = async (jobs) => {
      const add: { leasedBefore: number; leasedAfter?: number } = { leasedBefore: leases.length };
      adds.push(add);
      // Writes wait a moment, as on a busy or distant Redis.
      await pauser.call('CLIENT', 'PAUSE', '300', 'WRITE');
      const added = await addBulk(jobs);
      add.leasedAfter = leases.length;
      return added;
    };
    const deps = {
      db: database.db,
      queue: slow,
      config: { maxQueuedJobs: 300, producerPageSize: 100, queueLeaseMs: 60_000 },
      logger: createLogger('silent'),
      redisLoss: new RedisLossDetector(slow, database.db),
      shard: ONE_SHARD,
    };
    const observePage = (seconds: number) => leases.push(seconds);
    expect(await enqueueReadyOrders({ ...deps, observePage, fence: await heldLease() })).toMatchObject({ enqueued: 300 });
    expect(adds).toHaveLength(3);
    expect(adds[0]).toEqual({ leasedBefore: 1, leasedAfter: 2 });
    expect(await slow.getWaitingCount()).toBe(300);
  } finally {
    pauser.disconnect();
    await slow.close();
    await redis.stop();
  }
});

it('when Redis refuses a page of jobs, no order stays leased without a job: the page leased while it was being added is let go too', async () => {
  // Full after some pages: a run adds each page while it leases the next one, so a refused page has a
  // leased one behind it.
  const redis = await PrivateRedis.start(['--maxmemory', '1500kb', '--maxmemory-policy', 'noeviction']);
  const small = new Queue(queueName, { connection: redisConnection(redis.url) });
  try {
    await insertOrders(database.db, ids(5000), 'http://127.0.0.1:9/unused');
    const deps = {
      db: database.db,
      queue: small,
      config: { maxQueuedJobs: 5000, producerPageSize: 100, queueLeaseMs: 60_000 },
      logger: createLogger('silent'),
      redisLoss: new RedisLossDetector(small, database.db),
      shard: ONE_SHARD,
    };
    await expect(enqueueReadyOrders({ ...deps, fence: await heldLease() })).rejects.toThrow(/OOM/);
    const jobs = new Set((await small.getWaiting(0, -1)).map((job) => String(job.data.orderId)));
    const leased = (await database.db.raw('SELECT id FROM orders WHERE status = 5 AND lease_until > now()')).rows.map(
      (row: { id: string }) => String(row.id),
    );
    expect(jobs.size).toBeGreaterThan(0);
    expect(leased.filter((id: string) => !jobs.has(id))).toEqual([]);
  } finally {
    await small.close();
    await redis.stop();
  }
});

it('a backlog larger than MAX_QUEUED_JOBS never holds more than that many jobs in Redis, and all of it is delivered once', async () => {
  receiver = await new Receiver(() => ({ status: 200, delayMs: 2 })).start();
  const env = daemonEnv(database.url, queueName, {
    CALLBACK_ALLOW_PRIVATE: 'true',
    POLL_INTERVAL_MS: '50',
    MAX_QUEUED_JOBS: '25',
    WORKER_CONCURRENCY: '10',
  });
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

it('a full queue is topped up again as the workers make room, not at the next poll', async () => {
  receiver = await new Receiver(() => ({ status: 200 })).start();
  // One NOTIFY wakes the producer for the whole insert, and the next poll is an hour away: only
  // looking again after finding the queue full can deliver 40 queues' worth before the deadline.
  await spawnDaemon(
    'start',
    daemonEnv(database.url, queueName, {
      CALLBACK_ALLOW_PRIVATE: 'true',
      POLL_INTERVAL_MS: '3600000',
      MAX_QUEUED_JOBS: '25',
    }),
  );
  await insertOrders(database.db, ids(1000), receiver.url());
  await waitFor('the backlog delivered', async () => (await statusCounts(database.db))[6] === 1000, 30_000);
  expect(receiver.countsById().size).toBe(1000);
});

it.each([
  ['from the front', false, `(1, 0, ${FENCE_VALUES}, 500, 60000)`],
  ['after a cursor', true, `(${Date.now() * 1000 - 3_600_000_000}, 0, 1, 0, ${FENCE_VALUES}, 500, 60000)`],
  ['from the front, for one shard of four', false, `(4, 1, ${FENCE_VALUES}, 500, 60000)`],
  ['after a cursor, for one shard of four', true, `(${Date.now() * 1000 - 3_600_000_000}, 0, 4, 1, ${FENCE_VALUES}, 500, 60000)`],
])('the producer reads the ready index %s, planned per call or once (prepared), never the whole table', async (_, afterCursor, values) => {
  await insertOrders(database.db, ids(20_000), 'http://127.0.0.1:9/unused', {}, 6);
  await insertOrders(database.db, [50_001, 50_002], 'http://127.0.0.1:9/unused');
  await database.db.raw('ANALYZE orders');
  const producer = await startTestDaemon(
    'producer',
    daemonEnv(database.url, queueName, {
      LOG_LEVEL: 'debug',
    }),
  );
  await waitFor('both enqueued', async () => (await queue.getWaitingCount()) === 2);
  await producer.stop();

  // The statement itself, as the producer prepares it: its generic plan is the one most calls run.
  const session = await database.db.client.acquireConnection();
  try {
    await session.query(`PREPARE lease AS ${positionalParameters(leaseSql(afterCursor))}`);
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      await session.query(`SET plan_cache_mode = ${mode}`);
      const plan = (await session.query(`EXPLAIN EXECUTE lease${values}`)).rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']);
      const scans = plan.filter((line: string) => /Scan.* on orders /.test(line));
      expect(`${mode}: ${scans.join(' | ')}`).toMatch(/Index Scan using orders_ready_idx on orders/);
      expect(`${mode}: ${plan.join('\n')}`).not.toMatch(/Seq Scan/);
    }
  } finally {
    await session.query('DEALLOCATE ALL; RESET plan_cache_mode');
    await database.db.client.releaseConnection(session);
  }
});

describe('leasing while some partners are held', () => {
  const origin = (n: number) => `https://partner-${n}.example.com`;
  const heldOrigin = 'https://held.example.com';

  beforeEach(async () => {
    for (let n = 0; n < 50; n++)
      await insertOrders(
        database.db,
        Array.from({ length: 40 }, (_, i) => n * 40 + i + 1),
        `${origin(n)}/cb`,
      );
    await insertOrders(
      database.db,
      Array.from({ length: 20_000 }, (_, i) => 100_000 + i),
      `${heldOrigin}/cb?x=1`,
    );
    // Twenty partners with a backlog of their own: a page must not read a page's worth from each.
    for (let n = 0; n < 20; n++)
      await insertOrders(
        database.db,
        Array.from({ length: 1000 }, (_, i) => 200_000 + n * 1000 + i),
        `https://busy-${n}.example.com/cb`,
      );
    await insertOrders(database.db, [900_001], 'not a url'); // a bad row: leased, so a worker can fail it
    await database.db.raw('ANALYZE orders');
  });

  it("a run leases none of a held partner's orders and only the probes of a half-open one, however many pages it reads", async () => {
    const deps = {
      db: database.db,
      queue,
      config: { maxQueuedJobs: 30_000, producerPageSize: 1000, queueLeaseMs: 60_000 },
      logger: createLogger('silent'),
      redisLoss: new RedisLossDetector(queue, database.db),
      shard: ONE_SHARD,
      fence: await heldLease(),
      partnerLimits: async () =>
        new Map([
          [heldOrigin, 0],
          [origin(7), 3],
        ]),
    };
    const run = await enqueueReadyOrders(deps);
    const jobs = await queue.getWaiting(0, -1);
    expect(run.enqueued).toBe(jobs.length);
    const byOrigin = new Map<string, number>();
    for (const job of jobs) byOrigin.set(job.data.origin ?? 'bad', (byOrigin.get(job.data.origin ?? 'bad') ?? 0) + 1);
    expect(byOrigin.get(heldOrigin)).toBeUndefined();
    expect(byOrigin.get(origin(7))).toBe(3);
    expect(byOrigin.get(origin(8))).toBe(40);
    expect(byOrigin.get('bad')).toBe(1);
    expect(byOrigin.get('https://busy-0.example.com')).toBe(1000);
    expect(jobs.length).toBe(49 * 40 + 3 + 1 + 20 * 1000);
    // The held partner's backlog was not written either.
    expect(
      Number(
        (await database.db.raw('SELECT count(*) AS n FROM orders WHERE id BETWEEN 100000 AND 199999 AND lease_until IS NOT NULL')).rows[0]
          .n,
      ),
    ).toBe(0);
  });

  it("reads a held partner's index entries once, not its backlog: the cost of a hold does not grow with it", async () => {
    const fence = { name: 'producer:t', token: randomUUID() };
    await takeProducerLease(database.db, fence, 'test', 60_000);
    for (const [mode, { nodes }] of await planLeaseByPartner(fence, heldOrigin, 500)) {
      expect(nodes.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'orders')).toEqual([]);
      const readThroughPartnerIndex = nodes
        .filter((n) => n['Index Name'] === 'orders_ready_origin_idx')
        .reduce((sum, n) => sum + Number(n['Actual Rows']) * Number(n['Actual Loops']), 0);
      expect(`${mode}: ${readThroughPartnerIndex}`).toMatch(/: \d+$/);
      // A page of 500 shared by the 70 partners with orders (about 8 each), and a few descents per
      // partner: not the held partner's 20,000, nor 500 from each busy one.
      expect(readThroughPartnerIndex).toBeGreaterThan(500);
      expect(readThroughPartnerIndex).toBeLessThan(1_500);
    }
  });
});

type PlanNode = Record<string, unknown>;

/**
 * LEASE_BY_PARTNER_SQL as the producer prepares it, run under EXPLAIN ANALYZE (rolled back) with
 * `held` at 0 and a page of `pageSize`, once planned per call and once generic: each mode's top node
 * and every node of its plan.
 */
async function planLeaseByPartner(
  fence: ProducerFence,
  held: string,
  pageSize: number,
): Promise<[string, { top: PlanNode; nodes: PlanNode[] }][]> {
  const plans: [string, { top: PlanNode; nodes: PlanNode[] }][] = [];
  const session = await database.db.client.acquireConnection();
  try {
    await session.query(`PREPARE lease_by_partner AS ${positionalParameters(LEASE_BY_PARTNER_SQL)}`);
    for (const mode of ['force_custom_plan', 'force_generic_plan']) {
      await session.query(`SET plan_cache_mode = ${mode}`);
      await session.query('BEGIN');
      const [
        {
          'QUERY PLAN': [plan],
        },
      ] = (
        await session.query(
          `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE lease_by_partner(1, 0, '{"${held}": 0}', ${pageSize}, '${fence.name}', '${fence.token}', 60000)`,
        )
      ).rows;
      await session.query('ROLLBACK');
      const nodes: PlanNode[] = [];
      const walk = (node: PlanNode) => {
        nodes.push(node);
        for (const child of (node.Plans as PlanNode[] | undefined) ?? []) walk(child);
      };
      walk(plan.Plan);
      plans.push([mode, { top: plan.Plan, nodes }]);
    }
  } finally {
    await session.query('DEALLOCATE ALL; RESET plan_cache_mode');
    await database.db.client.releaseConnection(session);
  }
  return plans;
}

describe('leasing partner by partner beside a healthy partner with a backlog', () => {
  const held = 'http://127.0.0.1:1111';
  const healthy = 'http://127.0.0.1:2222';

  beforeEach(async () => {
    // As in the isolation scenario, seconds in: the held partner's orders handed back for its hold,
    // the healthy one's partly delivered, partly queued, the rest visible.
    await insertOrders(database.db, ids(5000), `${held}/cb`);
    await insertOrders(
      database.db,
      Array.from({ length: 5000 }, (_, i) => 1_000_000 + i),
      `${healthy}/cb`,
    );
    await database.db.raw("UPDATE orders SET next_attempt_at = now() + interval '30 s' WHERE id <= 5000");
    await database.db.raw("UPDATE orders SET lease_until = now() + interval '35 s' WHERE id BETWEEN 1000000 AND 1001999");
    await database.db.raw('UPDATE orders SET status = 6 WHERE id BETWEEN 1000000 AND 1001499');
    await database.db.raw('ANALYZE orders');
  });

  it('reads only through orders_ready_origin_idx and the primary key, not every visible order', async () => {
    for (const [mode, { top, nodes }] of await planLeaseByPartner(await heldLease(), held, 1000)) {
      expect(top['Actual Rows']).toBe(1000);
      // Either way of reading orders_ready_idx here reads every visible order (3,000), and the
      // semi-join that does it works out each one's origin.
      expect(nodes.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'orders')).toEqual([]);
      const indexes = new Set(nodes.map((n) => n['Index Name']).filter((name) => name !== undefined && name !== 'producer_leases_pkey'));
      expect(`${mode}: ${[...indexes].sort().join(', ')}`).toBe(`${mode}: orders_pkey, orders_ready_origin_idx`);
    }
  });
});

/** Moves an order that was created an hour ago at 4 to 5: its key in the ready index is an hour old. */
async function readyBehindEveryone(id: number, options: { notify: boolean; callbackUrl?: string }): Promise<void> {
  await insertOrders(database.db, [id], options.callbackUrl ?? 'http://127.0.0.1:9/unused', {}, 4);
  await database.db.raw(`UPDATE orders SET next_attempt_at = now() - interval '1 hour' WHERE id = ?`, [id]);
  await database.db.transaction(async (trx) => {
    // Triggers off for this transaction: no NOTIFY, as when a notification is lost.
    if (!options.notify) await trx.raw('SET LOCAL session_replication_role = replica');
    await trx.raw('UPDATE orders SET status = 5 WHERE id = ?', [id]);
  });
}

it('a run that continues after a full queue starts where the last one stopped; one from the front finds what became ready behind it', async () => {
  await insertOrders(database.db, ids(30), 'http://127.0.0.1:9/unused');
  const deps = {
    db: database.db,
    queue,
    config: { maxQueuedJobs: 10, producerPageSize: 4, queueLeaseMs: 60_000 },
    logger: createLogger('silent'),
    redisLoss: new RedisLossDetector(queue, database.db),
    shard: ONE_SHARD,
    fence: await heldLease(),
  };
  const queued = async () => (await queue.getWaiting(0, -1)).map((job) => Number(job.data.orderId)).sort((a, b) => a - b);

  const first = await enqueueReadyOrders(deps);
  expect(first).toMatchObject({ enqueued: 10, queueFull: true });
  expect(first.resumeAt).toBeDefined();
  expect(await queued()).toEqual(ids(10));

  const full = await enqueueReadyOrders(deps, first.resumeAt);
  expect(full).toEqual({ enqueued: 0, queueFull: true, resumeAt: first.resumeAt }); // nothing read: nothing moved

  // The queue empties; an order becomes ready with a key before every order leased so far.
  await queue.drain();
  await readyBehindEveryone(1000, { notify: false });
  const second = await enqueueReadyOrders(deps, first.resumeAt);
  expect(second.enqueued).toBe(10);
  expect(await queued()).toEqual(ids(20).slice(10));

  await queue.drain();
  const fromFront = await enqueueReadyOrders(deps);
  expect(fromFront.enqueued).toBe(10);
  expect(await queued()).toEqual([21, 22, 23, 24, 25, 26, 27, 28, 29, 1000]); // 1000 first: its key is the oldest
});

describe('an order that becomes ready behind the point where a continuing run starts', () => {
  const BACKLOG = 2000;

  /** Drains a backlog through a small queue (so runs continue from a cursor) and makes order 100,000 ready behind it. */
  async function readyDuringBacklog(options: { notify: boolean; pollIntervalMs: number }): Promise<number> {
    receiver = await new Receiver(() => ({ status: 200, delayMs: 20 })).start();
    await insertOrders(database.db, ids(BACKLOG), receiver.url());
    await spawnDaemon(
      'start',
      daemonEnv(database.url, queueName, {
        CALLBACK_ALLOW_PRIVATE: 'true',
        POLL_INTERVAL_MS: String(options.pollIntervalMs),
        MAX_QUEUED_JOBS: '25',
        PRODUCER_PAGE_SIZE: '10',
        WORKER_CONCURRENCY: '10',
        LOG_LEVEL: 'info',
      }),
    );
    await waitFor('the backlog under way', async () => ((await statusCounts(database.db))[6] ?? 0) >= 100, 60_000);
    await readyBehindEveryone(100_000, { notify: options.notify, callbackUrl: receiver.url() });
    // How many backlog orders were still waiting when it was delivered.
    return waitFor(
      'order 100000 delivered',
      async () => {
        const rows = await database.db.raw<{ rows: { late: number; waiting: string }[] }>(
          `SELECT (SELECT status FROM orders WHERE id = 100000) AS late, count(*) AS waiting FROM orders WHERE status = 5`,
        );
        const { late, waiting } = rows.rows[0];
        return late === 6 ? Number(waiting) : undefined;
      },
      60_000,
    );
  }

  it('is delivered soon after its NOTIFY, while the backlog still drains', async () => {
    const stillWaiting = await readyDuringBacklog({ notify: true, pollIntervalMs: 600_000 });
    expect(stillWaiting).toBeGreaterThan(BACKLOG / 2);
  });

  it('is delivered within the poll interval when its NOTIFY is lost, while the backlog still drains', async () => {
    const stillWaiting = await readyDuringBacklog({ notify: false, pollIntervalMs: 300 });
    expect(stillWaiting).toBeGreaterThan(BACKLOG / 2);
  });
});

it('a producer that stops gives its lease up at once: another replica need not wait for it to run out', async () => {
  const env = daemonEnv(database.url, queueName, { POLL_INTERVAL_MS: '100', PRODUCER_LEASE_MS: '60000', MAX_QUEUED_JOBS: '100000' });
  const producer = await spawnDaemon('producer', env);
  await insertOrders(database.db, ids(20_000), 'http://127.0.0.1:9/unused');
  // Stopped while it works: it holds the lease from one run to the next.
  await waitFor(
    'the producer at work, holding its lease',
    async () => {
      const { rows } = await database.db.raw('SELECT 1 FROM producer_leases WHERE expires_at > now()');
      return rows.length > 0 && (await queue.getWaitingCount()) > 0;
    },
    10_000,
    10,
  );
  producer.signal('SIGTERM');
  expect(await producer.exited).toEqual({ code: 0, signal: null });
  const another = { name: `producer:${queueName}`, token: randomUUID() };
  expect(await takeProducerLease(database.db, another, 'another', 60_000)).toBe(true);
});

it('a producer whose letting go of the lease failed takes it again on its next run, not when it runs out', async () => {
  // The first time the producer lets its lease go, Postgres refuses (as a connection cut mid-statement would).
  // A sequence counts the releases: unlike a row, it keeps the count when the statement is rolled back.
  await database.db.raw(`
    CREATE SEQUENCE releases;
    CREATE FUNCTION fail_first_release() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('releases') = 1 THEN RAISE EXCEPTION 'the release is lost'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER fail_first_release BEFORE UPDATE ON producer_leases FOR EACH ROW
      WHEN (NEW.token = OLD.token AND NEW.expires_at <= now()) EXECUTE FUNCTION fail_first_release();
  `);
  const releaseLost = async () => (await database.db.raw('SELECT is_called FROM releases')).rows[0].is_called === true;
  const queued = async () => Number((await database.db.raw('SELECT count(*) AS n FROM orders WHERE lease_until IS NOT NULL')).rows[0].n);
  const env = daemonEnv(database.url, queueName, { POLL_INTERVAL_MS: '100', PRODUCER_LEASE_MS: '60000' });
  await spawnDaemon('producer', env);
  // Its first run finds nothing and lets the lease go: that release is lost, and the lease stands for a
  // minute under the token the producer failed to release.
  await waitFor('the lease let go, and the release lost', releaseLost);

  await insertOrders(database.db, [1], 'http://127.0.0.1:9/unused');
  await waitFor('the order queued', async () => (await queued()) === 1, 10_000);
});
