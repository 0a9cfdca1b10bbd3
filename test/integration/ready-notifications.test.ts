import { randomUUID } from 'node:crypto';

import { Client } from 'pg';

import { loadConfig } from '../../src/config';
import { createDb } from '../../src/db/connection';
import { takeProducerLease } from '../../src/db/producer-lease';
import { announceReleased, routeReadyNotifications } from '../../src/db/ready-notifications';
import { createLogger } from '../../src/observability/logger';
import { type Producer, startProducer } from '../../src/producer/producer';
import { READY_CHANNEL } from '../../src/producer/ready-listener';
import { CallbackQueues } from '../../src/queue/shards';
import { daemonEnv } from '../helpers/daemons';
import { adminQuery, createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, uniqueQueueName } from '../helpers/queue';
import { sleep, waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let listener: Client | undefined;
let payloads: string[] = [];

beforeEach(async () => {
  database = await createTestDatabase();
  payloads = [];
});

afterEach(async () => {
  await listener?.end();
  listener = undefined;
  await database.drop();
});

async function listen(): Promise<void> {
  listener = new Client({ connectionString: database.url });
  await listener.connect();
  listener.on('notification', (message) => payloads.push(message.payload ?? ''));
  await listener.query(`LISTEN ${READY_CHANNEL}`);
}

it("with several shards, a ready order's notification names its shard, and one transaction sends at most one per shard", async () => {
  expect(await routeReadyNotifications(database.db, 4)).toBe(true);
  await listen();
  await insertOrders(database.db, [7], 'https://partner.example/cb');
  await insertOrders(database.db, [-6], 'https://partner.example/cb'); // |-6| mod 4 = 2, as shardOf says
  await waitFor('two notifications', () => payloads.length >= 2);
  expect(payloads).toEqual(['4:3', '4:2']);

  payloads = [];
  await insertOrders(
    database.db,
    Array.from({ length: 1000 }, (_, i) => 100 + i),
    'https://partner.example/cb',
  );
  await waitFor('the bulk insert heard', () => payloads.length >= 4);
  await sleep(200);
  expect([...payloads].sort()).toEqual(['4:0', '4:1', '4:2', '4:3']);

  // Back to one shard: the empty notification of migration 001, folded to one per transaction.
  expect(await routeReadyNotifications(database.db, 1)).toBe(true);
  payloads = [];
  await insertOrders(database.db, [2000, 2001, 2002], 'https://partner.example/cb');
  await waitFor('one notification', () => payloads.length >= 1);
  await sleep(200);
  expect(payloads).toEqual(['']);
});

it('replicas starting together with different numbers of shards do not fail, and one of them decides', async () => {
  const answers = await Promise.all([2, 3, 4, 5, 2, 3].map((n) => routeReadyNotifications(database.db, n)));
  expect(answers.every(Boolean)).toBe(true);
  await listen();
  await insertOrders(database.db, [60], 'https://partner.example/cb');
  await waitFor('a notification', () => payloads.length >= 1);
  expect(payloads[0]).toMatch(/^[2-5]:0$/);
});

it("rewrites the function the trigger calls, whatever the role's search_path finds first", async () => {
  await database.db.raw('CREATE SCHEMA elsewhere');
  const url = new URL(database.url);
  url.searchParams.set('options', '-c search_path=elsewhere,public');
  const onPath = createDb(url.toString(), 1);
  try {
    expect(await routeReadyNotifications(onPath, 4)).toBe(true);
  } finally {
    await onPath.destroy();
  }
  await listen();
  await insertOrders(database.db, [7], 'https://partner.example/cb');
  await waitFor('a notification', () => payloads.length >= 1);
  expect(payloads).toEqual(['4:3']);
  const copies = await database.db.raw("SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'orders_notify_ready'");
  expect(copies.rows[0].n).toBe(1);
});

it('a role that does not own the trigger function leaves it as it is and says so', async () => {
  const role = `oc_reader_${randomUUID().slice(0, 8)}`;
  await adminQuery(`CREATE ROLE ${role} LOGIN`);
  const url = new URL(database.url);
  url.username = role;
  const asReader = createDb(url.toString(), 1);
  try {
    expect(await routeReadyNotifications(asReader, 4)).toBe(false);
    await listen();
    await insertOrders(database.db, [5], 'https://partner.example/cb');
    await waitFor('a notification', () => payloads.length >= 1);
    expect(payloads).toEqual(['']);
  } finally {
    await asReader.destroy();
    await adminQuery(`DROP ROLE ${role}`);
  }
});

describe('which producer loops a notification wakes', () => {
  let queueName: string;
  let queues: CallbackQueues | undefined;
  let producer: Producer | undefined;
  /** The lease names the producer asked for, in order, seen on its database client. */
  let asked: string[] = [];

  beforeEach(() => {
    queueName = uniqueQueueName();
    asked = [];
  });

  afterEach(async () => {
    await producer?.stop();
    producer = undefined;
    await queues?.close();
    queues = undefined;
    for (let shard = 0; shard < 4; shard++) await obliterateQueue(shard === 0 ? queueName : `${queueName}#${shard}`);
  });

  /** One replica's producer, in this process, polling once a minute: only notifications wake it. */
  async function start(shards: number): Promise<void> {
    const config = loadConfig(
      daemonEnv(database.url, queueName, { QUEUE_SHARDS: String(shards), POLL_INTERVAL_MS: '60000', PRODUCER_LEASE_MS: '60000' }),
    );
    database.db.on('query', (query: { sql: string; bindings?: unknown[] }) => {
      if (/FROM producer_leases WHERE name = (\?|\$1)/.test(query.sql)) asked.push(String(query.bindings?.[0]));
    });
    queues = CallbackQueues.open(config);
    producer = await startProducer({ db: database.db, queues, config, logger: createLogger('silent'), holder: 'test' });
  }

  it("wakes only the loop of the order's shard", async () => {
    await start(4);
    // At start every loop looks once (notifications may have been missed before the LISTEN).
    await waitFor('each loop looked once', () => new Set(asked).size === 4);
    await sleep(300);
    asked = [];
    await insertOrders(database.db, [6], 'https://partner.example/cb'); // shard 2
    await waitFor('its job', async () => (await queues!.shards[2].getWaitingCount()) === 1);
    await sleep(300);
    expect(new Set(asked)).toEqual(new Set([`producer:${queueName}#2`]));
  });

  it('takes the shard at once when the replica that held it says it let it go, not when its lease would have run out', async () => {
    const another = { name: `producer:${queueName}`, token: randomUUID() };
    expect(await takeProducerLease(database.db, another, 'another', 60_000)).toBe(true);
    await start(1);
    await waitFor('the first ask', () => asked.length >= 1);
    await insertOrders(database.db, [1], 'https://partner.example/cb'); // heard, and left to the holder
    // The other replica stops: it lets the lease go and says so, as Producer.stop() does.
    await database.db.raw('UPDATE producer_leases SET expires_at = now() WHERE name = ?', [another.name]);
    await announceReleased(database.db, { index: 0, count: 1 });
    await waitFor('the order queued by this replica', async () => (await queues!.shards[0].getWaitingCount()) === 1, 10_000);
  });

  it("does not wake a loop whose shard another replica holds, until that replica's lease would run out", async () => {
    // Another replica holds the only shard for a minute (frozen, say): its lease statement is what
    // produces, so waking here on every notification would only ask for the lease again.
    expect(await takeProducerLease(database.db, { name: `producer:${queueName}`, token: randomUUID() }, 'another', 60_000)).toBe(true);
    await start(1);
    await waitFor('the first ask', () => asked.length >= 1);
    await sleep(300);
    const before = asked.length;
    for (let id = 1; id <= 10; id++) await insertOrders(database.db, [id], 'https://partner.example/cb');
    await sleep(500);
    expect(asked.length).toBe(before);
  });
});
