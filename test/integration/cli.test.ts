import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { Queue } from 'bullmq';
import { Client } from 'pg';

import { createDb } from '../../src/db/connection';
import { redisConnection } from '../../src/queue/callback-queue';
import { runCli } from '../helpers/cli';
import { daemonEnv, spawnDaemon, stopAllDaemons, TEST_SECRET } from '../helpers/daemons';
import { ADMIN_URL, adminQuery, createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';

const cli = runCli;

afterEach(() => stopAllDaemons());

describe('migrate', () => {
  const name = `oc_test_migrate_${randomBytes(4).toString('hex')}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const env = { DATABASE_URL: url.toString() };
  afterAll(() => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));

  it('creates the database when it does not exist, applies the migrations, and is a no-op the second time', async () => {
    const [a, b] = await Promise.all([cli(['migrate'], env), cli(['migrate'], env)]); // two at once, on a database that does not exist
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(a.stdout + b.stdout).toMatch(/applied 001_create_orders.js, 002_create_delivery_log.js/);
    const again = await cli(['migrate'], env);
    expect(again).toMatchObject({ code: 0, stdout: 'already up to date\n' });
  });

  it('lets the order system insert only (id, status, callback_url, payload), and bumps version on every status change', async () => {
    const client = new Client({ connectionString: url.toString() });
    await client.connect();
    try {
      await client.query(`INSERT INTO orders (id, status, callback_url, payload) VALUES (1, 4, 'https://p.example/', '{}')`);
      const inserted = (await client.query('SELECT * FROM orders WHERE id = 1')).rows[0];
      expect(inserted).toMatchObject({
        version: 0,
        attempts: 0,
        last_error: null,
        delivered_at: null,
        lease_until: null,
        claim_token: null,
      });
      for (const column of ['next_attempt_at', 'created_at', 'updated_at', 'ready_since']) expect(inserted[column]).toBeInstanceOf(Date);

      await client.query(`UPDATE orders SET payload = '{"a":1}' WHERE id = 1`);
      expect((await client.query('SELECT version FROM orders WHERE id = 1')).rows[0].version).toBe(0);
      await client.query('UPDATE orders SET status = 5 WHERE id = 1');
      await client.query('UPDATE orders SET status = 6 WHERE id = 1');
      await client.query('UPDATE orders SET status = 5 WHERE id = 1');
      const after = (await client.query('SELECT * FROM orders WHERE id = 1')).rows[0];
      expect(after.version).toBe(3);
      expect(after.ready_since.getTime()).toBeGreaterThan(inserted.ready_since.getTime());
      expect(after.updated_at.getTime()).toBeGreaterThan(inserted.updated_at.getTime());
    } finally {
      await client.end();
    }
  });

  it('migration 006 (claim_until) rolls back to the table and trigger before it, and applies again', async () => {
    const db = createDb(url.toString(), 2);
    const migrations = { directory: path.join(__dirname, '..', '..', 'migrations'), loadExtensions: ['.js'] };
    const shape = async () => ({
      column: (await db.raw("SELECT 1 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'claim_until'"))
        .rowCount,
      fillfactor: (await db.raw("SELECT reloptions FROM pg_class WHERE relname = 'orders'")).rows[0].reloptions,
      trigger: /claim_until/.test((await db.raw("SELECT prosrc FROM pg_proc WHERE proname = 'orders_before_update'")).rows[0].prosrc),
    });
    try {
      expect(await shape()).toEqual({ column: 1, fillfactor: ['fillfactor=80'], trigger: true });
      await db.migrate.down({ ...migrations, name: '006_claim_until.js' });
      expect(await shape()).toEqual({ column: 0, fillfactor: null, trigger: false });
      await db.raw('UPDATE orders SET status = 6 WHERE id = 1'); // the trigger of 001 works without the column
      await db.migrate.up({ ...migrations, name: '006_claim_until.js' });
      expect(await shape()).toEqual({ column: 1, fillfactor: ['fillfactor=80'], trigger: true });
    } finally {
      await db.destroy();
    }
  });
});

describe('bad configuration stops the process at start with a message naming the variable', () => {
  it.each([
    [['start'], { WORKER_CONCURRENCY: 'abc', CALLBACK_SECRET: TEST_SECRET }, /WORKER_CONCURRENCY/],
    [['start'], {}, /CALLBACK_SECRET: required/],
    [['worker'], { CALLBACK_SECRET: 'whsec_c2hvcnQ=' }, /CALLBACK_SECRET: must decode to at least 16 bytes/],
    [['stats'], { DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must be a URL starting with postgres/],
    [['migrate'], { REDIS_URL: 'http://x' }, /REDIS_URL/],
  ])('%j with %j exits 2', async (args, env, message) => {
    const result = await cli(args, env);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^order-callbacks: bad configuration: /);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace for a user mistake
  });

  it('the producer alone needs no signing secret', async () => {
    const database = await createTestDatabase();
    const queueName = uniqueQueueName();
    try {
      const producer = await spawnDaemon('producer', daemonEnv(database.url, queueName, { CALLBACK_SECRET: '' }));
      producer.signal('SIGTERM');
      expect(await producer.exited).toEqual({ code: 0, signal: null });
    } finally {
      await database.drop();
      await obliterateQueue(queueName);
    }
  });
});

describe('stats', () => {
  let database: TestDatabase;
  const queueName = uniqueQueueName();
  beforeAll(async () => {
    database = await createTestDatabase();
    await insertOrders(database.db, [1, 2, 3], 'https://p.example/', {}, 5);
    await insertOrders(database.db, [4, 5], 'https://p.example/', {}, 6);
    await insertOrders(database.db, [6], 'https://p.example/', {}, 7);
    await insertOrders(database.db, [7, 8, 9, 10], 'https://p.example/', {}, 2);
    await database
      .db('orders')
      .where({ id: 1 })
      .update({ ready_since: new Date(Date.now() - 120_000) });
    // Orders at 6, 7 and others are the planner's estimates: ANALYZE reads all ten rows.
    await database.db.raw('ANALYZE orders');
    const queue = new Queue(queueName, { connection: redisConnection(SHARED_REDIS_URL) });
    await queue.add('callback', { orderId: '1' }, { jobId: 'order-1' });
    await queue.add('callback', { orderId: '2' }, { jobId: 'order-2', delay: 60_000 });
    await queue.close();
  });
  afterAll(async () => {
    await database.drop();
    await obliterateQueue(queueName);
  });

  it('--json counts orders by status, the oldest ready age and the queue depths', async () => {
    const result = await cli(['stats', '--json'], daemonEnv(database.url, queueName));
    expect(result.code).toBe(0);
    const stats = JSON.parse(result.stdout);
    expect(stats.orders).toEqual({ ready: 3, readyAtLeast: false, delivered: 2, failed: 1, other: 4 });
    expect(stats.oldestReadyAgeSeconds).toBeGreaterThanOrEqual(119);
    expect(stats.queue).toEqual({ waiting: 1, active: 0, delayed: 1, prioritized: 0 });
  });

  it('prints the same for people', async () => {
    const result = await cli(['stats'], daemonEnv(database.url, queueName));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/ready \(5\)\s+3\n\s+delivered \(6\)\s+~2\n\s+failed \(7\)\s+~1\n\s+other\s+~4/);
    expect(result.stdout).toMatch(new RegExp(`queue ${queueName}\\n\\s+waiting\\s+1`));
  });
});

describe('--help', () => {
  it.each([[[]], [['start']], [['worker']], [['producer']], [['migrate']], [['stats']], [['inspect']], [['requeue']]])(
    'order-callbacks %j --help',
    async (args) => {
      const result = await cli([...args, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Usage: order-callbacks/);
    },
  );

  it('lists every command', async () => {
    const { stdout } = await cli(['--help']);
    for (const command of ['migrate', 'start', 'worker', 'producer', 'stats', 'inspect', 'requeue'])
      expect(stdout).toMatch(new RegExp(`\\n\\s+${command}\\b`));
  });
});

it('an unknown command is a usage error, exit 2', async () => {
  const result = await cli(['deliver-everything']);
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/unknown command 'deliver-everything'/);
});
