import { Webhook } from 'standardwebhooks';

import { runCli } from '../helpers/cli';
import { deliveryEnv, type InProcessDaemon, startTestDaemon, stopAllDaemons, TEST_SECRET } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { type ReceivedRequest, Receiver } from '../helpers/receiver';
import { sleep, waitFor } from '../helpers/wait-for';

// A worker that could not read the partner secrets does not know which key a partner expects. Signing
// with CALLBACK_SECRET in its place got a 401 and failed the order for good; it must wait instead.
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

const verifies = (secret: string, request: ReceivedRequest) => {
  try {
    new Webhook(secret).verify(request.body, request.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
};

const start = () => startTestDaemon('start', deliveryEnv(database.url, queueName, SHARED_REDIS_URL));

async function addPartnerSecret(): Promise<string> {
  const added = await runCli(['secrets', 'add', '--host', '127.0.0.1'], { DATABASE_URL: database.url });
  return /\n(whsec_\S+)/.exec(added.stdout)![1];
}

async function deliveredWith(id: number, partnerSecret: string): Promise<void> {
  const request = await waitFor(`order ${id} at the receiver`, () => receiver.requestsFor(`order-${id}`)[0], 15_000);
  expect(verifies(partnerSecret, request)).toBe(true);
  expect(verifies(TEST_SECRET, request)).toBe(false);
  await waitFor(`order ${id} delivered`, async () => (await database.db('orders').where({ id }).first()).status === 6, 5000);
  expect(receiver.requestsFor(`order-${id}`)).toHaveLength(1);
}

it('a worker whose read of the partner secrets fails holds the order, without an attempt, and signs it with the right key once it can read them', async () => {
  const partnerSecret = await addPartnerSecret();
  await database.db.raw('ALTER TABLE partner_secrets RENAME TO partner_secrets_away'); // every read of it fails
  const daemon = await start();
  try {
    await insertOrders(database.db, [1], receiver.url());
    await waitFor(
      'the worker held it',
      () => daemon.logs.lines.find((line) => line.orderId === '1' && /partner secrets could not be read/.test(String(line.msg))),
      10_000,
    );
    await sleep(1000);
    expect(receiver.requestsFor('order-1')).toEqual([]);
    expect(await database.db('orders').where({ id: 1 }).first()).toMatchObject({ status: 5, attempts: 0 });
  } finally {
    await database.db.raw('ALTER TABLE partner_secrets_away RENAME TO partner_secrets');
  }
  await deliveredWith(1, partnerSecret);
  await daemon.stop();
}, 40_000);

it('a read of the partner secrets that waits on a lock gives up within its bound, and the order waits without an attempt', async () => {
  const partnerSecret = await addPartnerSecret();
  const locker = await database.db.client.acquireConnection();
  let daemon: InProcessDaemon | undefined;
  try {
    // Locked before the worker starts: its first read of the secrets waits, and gives up after 5 s.
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE partner_secrets IN ACCESS EXCLUSIVE MODE');
    daemon = await start();
    await insertOrders(database.db, [2], receiver.url());
    await waitFor(
      'the worker gave up on the read and held it',
      () => daemon!.logs.lines.find((line) => line.orderId === '2' && /partner secrets could not be read/.test(String(line.msg))),
      10_000,
    );
    expect(receiver.requestsFor('order-2')).toEqual([]);
    expect(await database.db('orders').where({ id: 2 }).first()).toMatchObject({ status: 5, attempts: 0 });
  } finally {
    await locker.query('ROLLBACK');
    await database.db.client.releaseConnection(locker);
  }
  await deliveredWith(2, partnerSecret);
  await daemon.stop();
}, 40_000);
