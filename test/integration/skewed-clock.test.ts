import { Webhook } from 'standardwebhooks';

import { deliveryEnv, spawnDaemon, stopAllDaemons, TEST_SECRET } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { type Behaviour, type ReceivedRequest, Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

// One clock decides: Postgres'. Replicas whose own clocks are 10 minutes off (libfaketime, Debian's
// faketime package) still deliver every order once, stamp what a Standard Webhooks receiver accepts
// (within 5 minutes of its clock), and wait as long as they mean to.
const LIBFAKETIME: string | undefined = require('../../scripts/lib/test-tools').findLibfaketime(process.env);
let database: TestDatabase;
let receiver: Receiver;
/** Partners of their own for the orders that ask for a pause: a Retry-After pauses its whole partner. */
let pausing: Receiver;
let pausingByDate: Receiver;
const queueName = uniqueQueueName();
const rejected: string[] = [];

const idOf = (request: ReceivedRequest) => Number(request.webhookId.slice('order-'.length));

beforeAll(async () => {
  // A missing library is a failure, never a skip.
  if (!LIBFAKETIME) throw new Error("no libfaketime.so.1: `npm test` installs Debian's faketime, or says what to install");
  database = await createTestDatabase();
  const verifier = new Webhook(TEST_SECRET);
  /** A partner that checks every request as a Standard Webhooks receiver does (timestamp within 5 min). */
  const verifying =
    (behaviour: Behaviour): Behaviour =>
    (request, attempt) => {
      try {
        verifier.verify(request.body, request.headers as Record<string, string>);
      } catch (err) {
        rejected.push(`${request.webhookId}: ${(err as Error).message}`);
        return { status: 400 };
      }
      return behaviour(request, attempt);
    };
  // A quarter of these orders fail their first try, and are retried after their backoff.
  receiver = await new Receiver(
    verifying((request, attempt) => (idOf(request) >= 1000 && attempt === 1 ? { status: 500 } : { status: 200 })),
  ).start();
  pausing = await new Receiver(
    verifying((_request, attempt) => (attempt === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200 })),
  ).start();
  // An HTTP date, three seconds ahead by the receiver's clock (the right one).
  pausingByDate = await new Receiver(
    verifying((_request, attempt) =>
      attempt === 1 ? { status: 503, headers: { 'retry-after': new Date(Date.now() + 3000).toUTCString() } } : { status: 200 },
    ),
  ).start();
});

afterAll(async () => {
  await stopAllDaemons();
  await receiver?.stop();
  await pausing?.stop();
  await pausingByDate?.stop();
  await database?.drop();
  await obliterateQueue(queueName);
});

const skewed = (offset: string) => ({ LD_PRELOAD: LIBFAKETIME ?? '', FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: '1' });

it('replicas 10 minutes ahead and behind deliver every order once, with timestamps the receiver accepts, and wait as long as they mean to', async () => {
  const env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, { RETRY_BASE_MS: '1000', RETRY_MAX_MS: '5000', LOG_LEVEL: 'info' });
  const replicas = await Promise.all([
    spawnDaemon('start', { ...env, ...skewed('+10m') }),
    spawnDaemon('start', { ...env, ...skewed('-10m') }),
  ]);
  const ahead = await new Promise<string>((resolve) => resolve(String(replicas[0].lines[0]?.time)));
  expect(Number(ahead) - Date.now()).toBeGreaterThan(9 * 60_000); // the replica's own clock is off indeed

  const ids = [...Array.from({ length: 300 }, (_, i) => i + 1), ...Array.from({ length: 100 }, (_, i) => 1000 + i), 2000, 3000];
  await insertOrders(database.db, ids.slice(0, -2), receiver.url());
  await insertOrders(database.db, [2000], pausing.url());
  await insertOrders(database.db, [3000], pausingByDate.url());
  await waitFor(
    'every order delivered',
    async () => Number((await database.db.raw('SELECT count(*) AS n FROM orders WHERE status = 6')).rows[0].n) === ids.length,
    60_000,
  );

  expect(rejected).toEqual([]);
  const counts = new Map([...receiver.countsById(), ...pausing.countsById(), ...pausingByDate.countsById()]);
  expect(ids.filter((id) => counts.get(`order-${id}`) !== (id >= 1000 ? 2 : 1))).toEqual([]);
  const requests = [...receiver.requests, ...pausing.requests, ...pausingByDate.requests];
  const gap = (id: number) => {
    const [first, second] = requests.filter((r) => r.webhookId === `order-${id}`);
    return second.startedAt - first.startedAt;
  };
  // A retry after one failure: equal jitter of the 1 s base, 0.5-1 s (not 10 minutes, nor at once).
  for (let id = 1000; id < 1100; id++) {
    expect(gap(id)).toBeGreaterThanOrEqual(450);
    expect(gap(id)).toBeLessThan(4000);
  }
  expect(gap(2000)).toBeGreaterThanOrEqual(1900); // Retry-After: 2
  expect(gap(2000)).toBeLessThan(6000);
  expect(gap(3000)).toBeGreaterThanOrEqual(1900); // Retry-After: a date 3 s ahead (whole seconds: 2-3 s)
  expect(gap(3000)).toBeLessThan(7000);
  // What the delivery log says happened, on Postgres' clock.
  const { rows } = await database.db.raw('SELECT max(abs(extract(epoch FROM now() - started_at))) AS s FROM delivery_log');
  expect(Number(rows[0].s)).toBeLessThan(120);
}, 120_000);
