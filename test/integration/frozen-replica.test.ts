import { Client } from 'pg';

import { deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, getOrder, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { sleep, waitFor } from '../helpers/wait-for';

// A replica paused between its claim and its request (a SIGSTOP, a VM pause, a long GC) wakes up with
// its timers late: it must not send on a claim that has run out, while another replica has delivered.
let database: TestDatabase;
let receiver: Receiver;
const queueName = uniqueQueueName();

beforeAll(async () => {
  database = await createTestDatabase();
  // Idle connections kept for a minute: the paused replica wakes up with one open, so nothing but the
  // check before writing stands between it and the partner.
  receiver = await new Receiver(() => ({ status: 200 })).start(0, 60_000);
});

afterAll(async () => {
  await stopAllDaemons();
  await receiver.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

it('a replica frozen after its claim, resumed after the claim ran out, sends nothing; the other replica delivers once', async () => {
  const env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
    CALLBACK_TIMEOUT_MS: '1000',
    CLAIM_TTL_MS: '3000',
    // Read on every attempt, after its claim: a lock on the table holds the attempt right there.
    PARTNER_SECRETS_REFRESH_MS: '50',
    LOG_LEVEL: 'debug',
  });
  const frozen = await spawnDaemon('start', env);
  await insertOrders(database.db, [1], receiver.url());
  await waitFor('a first order delivered', async () => (await getOrder(database.db, 1)).status === 6, 10_000);

  const locker = new Client({ connectionString: database.url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE partner_secrets IN ACCESS EXCLUSIVE MODE');
    await sleep(100); // the keys it read are stale now: the next attempt reads them again
    await insertOrders(database.db, [2], receiver.url());
    await waitFor('order 2 claimed', async () => (await getOrder(database.db, 2)).claim_token !== null, 10_000, 10);
    await waitFor(
      'the claiming attempt waiting on the lock',
      async () => {
        const { rows } = await locker.query(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%partner_secrets%'",
        );
        return Number(rows[0].n) > 0;
      },
      10_000,
      10,
    );
    frozen.signal('SIGSTOP');
    await locker.query('COMMIT');
  } finally {
    await locker.end();
  }

  // The other replica takes the order over once the claim has run out, and delivers it.
  const other = await spawnDaemon('start', env);
  await waitFor('order 2 delivered by the other replica', async () => (await getOrder(database.db, 2)).status === 6, 30_000);
  frozen.signal('SIGCONT');
  await waitFor(
    'the frozen replica back at work',
    () => frozen.lines.find((line) => line.orderId === '2' && /released|superseded/.test(String(line.msg))),
    10_000,
  );
  await sleep(500);

  expect(receiver.requestsFor('order-2')).toHaveLength(1);
  const log = await database.db('delivery_log').where({ order_id: 2 }).orderBy('id').select('outcome', 'worker', 'superseded', 'error');
  expect(log.filter((entry) => entry.outcome === 'delivered')).toHaveLength(1);
  // The frozen replica's attempt is on record, as not sent: no attempt counted against the order.
  expect(log.find((entry) => entry.outcome === 'released')).toMatchObject({
    error: expect.stringMatching(/^not sent: the claim was running out/),
  });
  expect((await getOrder(database.db, 2)).attempts).toBe(1);
  expect(other.pid).not.toBe(frozen.pid);
}, 60_000);
