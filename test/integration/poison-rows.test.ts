import { readFileSync } from 'node:fs';

import { type ChildDaemon, deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, getOrder, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

// Rows that no partner could be sent: Postgres judges them before they reach a process or Redis. They
// end 7 with a clear reason; no replica crashes, restarts or swells; the orders beside them go out.
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

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

it('a payload of tens of megabytes, one nested thousands deep, one not an object, and a megabyte of URL each end 7, and hurt nothing else', async () => {
  const url = receiver.url();
  await database.db.raw(
    `INSERT INTO orders (id, status, callback_url, payload) VALUES
    (1, 5, ?, jsonb_build_object('blob', repeat('x', 20000000))),
    (2, 5, ?, (repeat('{"a":', 5000) || '1' || repeat('}', 5000))::jsonb),
    (3, 5, ?, '42'::jsonb),
    (4, 5, ?, '{}'::jsonb)`,
    [url, url, url, `${url}?q=${'a'.repeat(1_000_000)}`],
  );
  const good = Array.from({ length: 300 }, (_, i) => 100 + i);
  await insertOrders(database.db, good, url);

  const env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, { LOG_LEVEL: 'info' });
  const replicas: ChildDaemon[] = await Promise.all([spawnDaemon('start', env), spawnDaemon('start', env)]);
  let peakRss = 0;
  const sampler = setInterval(() => {
    for (const replica of replicas) peakRss = Math.max(peakRss, rssMb(replica.pid));
  }, 50);
  try {
    await waitFor(
      'every order finished',
      async () => Number((await database.db.raw('SELECT count(*) AS n FROM orders WHERE status = 5')).rows[0].n) === 0,
      30_000,
    );
  } finally {
    clearInterval(sampler);
  }

  const finished = async (id: number) => {
    const order = await getOrder(database.db, id);
    return { status: order.status, attempts: order.attempts, last_error: order.last_error };
  };
  expect(await finished(1)).toEqual({
    status: 7,
    attempts: 1,
    last_error: expect.stringMatching(/^payload is 200000\d\d bytes as JSON text, far over MAX_PAYLOAD_BYTES/),
  });
  expect(await finished(2)).toEqual({
    status: 7,
    attempts: 1,
    last_error: expect.stringMatching(/^payload is nested more than 63 levels deep/),
  });
  expect(await finished(3)).toEqual({ status: 7, attempts: 1, last_error: expect.stringMatching(/^payload is not a JSON object/) });
  expect(await finished(4)).toEqual({
    status: 7,
    attempts: 1,
    last_error: expect.stringMatching(/^callback_url is longer than 2048 characters/),
  });
  for (const id of good) expect((await getOrder(database.db, id)).status).toBe(6);
  expect(receiver.requests.map((r) => r.webhookId).filter((id) => ['order-1', 'order-2', 'order-3', 'order-4'].includes(id))).toEqual([]);
  // Nothing crashed or restarted, and nothing failed a job on the way.
  for (const replica of replicas) {
    expect(replica.child.exitCode).toBeNull();
    expect(replica.lines.filter((line) => /job failed|uncaught/i.test(String(line.msg)))).toEqual([]);
  }
  expect(peakRss).toBeLessThan(250);
}, 60_000);
