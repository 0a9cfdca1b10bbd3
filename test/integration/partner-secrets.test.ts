import { Webhook } from 'standardwebhooks';

import { runCli } from '../helpers/cli';
import { daemonEnv, startTestDaemon, stopAllDaemons, TEST_SECRET } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, uniqueQueueName } from '../helpers/queue';
import { type ReceivedRequest, Receiver } from '../helpers/receiver';
import { sleep, waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let receiver: Receiver;
const queueName = uniqueQueueName();

const cli = (...args: string[]) => runCli(args, { DATABASE_URL: database.url });

beforeAll(async () => {
  database = await createTestDatabase();
  receiver = await new Receiver().start();
  await startTestDaemon(
    'start',
    daemonEnv(database.url, queueName, {
      CALLBACK_ALLOW_PRIVATE: 'true',
      POLL_INTERVAL_MS: '100',
      PARTNER_SECRETS_REFRESH_MS: '100',
    }),
  );
});

afterAll(async () => {
  await stopAllDaemons();
  await receiver.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

async function deliver(id: number): Promise<ReceivedRequest> {
  await sleep(300); // past the workers' secret refresh
  await insertOrders(database.db, [id], receiver.url());
  return waitFor(`order ${id} at the receiver`, () => receiver.requestsFor(`order-${id}`)[0]);
}

const verifies = (secret: string, request: ReceivedRequest) => {
  try {
    new Webhook(secret).verify(request.body, request.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
};

it('a partner secret replaces the default, a rotation signs with both, retiring ends it', async () => {
  expect(verifies(TEST_SECRET, await deliver(1))).toBe(true);

  const added = await cli('secrets', 'add', '--host', '127.0.0.1');
  expect(added.code).toBe(0);
  const first = added.stdout.match(/whsec_\S+/)![0];
  const signedWithFirst = await deliver(2);
  expect(verifies(first, signedWithFirst)).toBe(true);
  expect(verifies(TEST_SECRET, signedWithFirst)).toBe(false);

  const rotated = await cli('secrets', 'rotate', '--host', '127.0.0.1');
  const second = rotated.stdout.match(/whsec_\S+/)![0];
  const duringRotation = await deliver(3);
  expect(String(duringRotation.headers['webhook-signature']).split(' ')).toHaveLength(2);
  expect(verifies(first, duringRotation)).toBe(true);
  expect(verifies(second, duringRotation)).toBe(true);

  expect((await cli('secrets', 'retire', '--host', '127.0.0.1', '--all-but-newest')).stdout).toMatch(/retired 1 secret/);
  const afterRotation = await deliver(4);
  expect(verifies(second, afterRotation)).toBe(true);
  expect(verifies(first, afterRotation)).toBe(false);

  const list = await cli('secrets', 'list');
  expect(list.stdout).toMatch(/127\.0\.0\.1 .*retired/);
  expect(list.stdout).toMatch(/127\.0\.0\.1 .*ACTIVE/);
  expect(list.stdout).not.toMatch(/whsec_/);
});

it.each([
  [['secrets', 'add', '--host', 'https://partner.example/x'], /is not a host name/, 2],
  [['secrets', 'add', '--host', 'partner.example', '--secret', 'nope'], /--secret: must be whsec_/, 2],
  [['secrets', 'retire', '--host', 'partner.example'], /say which/, 2],
  [['secrets', 'retire', '--host', 'partner.example', '--id', '999'], /no active secret 999/, 1],
])('%j is refused with one line (a usage mistake exits 2, a missing secret 1)', async (args, message, code) => {
  const result = await cli(...args);
  expect(result.code).toBe(code);
  expect(result.stderr).toMatch(message);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
});
