import { Webhook } from 'standardwebhooks';

import { daemonEnv, startTestDaemon, stopAllDaemons, TEST_SECRET } from '../helpers/daemons';
import { createTestDatabase, getOrder, insertOrders, type OrderRow, type TestDatabase } from '../helpers/database';
import { obliterateQueue, uniqueQueueName } from '../helpers/queue';
import { type Behaviour, Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

// One daemon for the file; each test uses its own order ids and its own receiver path.
let database: TestDatabase;
let receiver: Receiver;
const queueName = uniqueQueueName();
const routes = new Map<string, Behaviour>();

beforeAll(async () => {
  database = await createTestDatabase();
  receiver = await new Receiver((request, attempt) => (routes.get(request.path) ?? (() => ({ status: 200 })))(request, attempt)).start();
  await startTestDaemon(
    'start',
    daemonEnv(database.url, queueName, {
      CALLBACK_ALLOW_PRIVATE: 'true',
      POLL_INTERVAL_MS: '100',
      RETRY_BASE_MS: '50',
      // With 4 attempts our own backoff never exceeds 200 ms; the ceiling matters for Retry-After only.
      RETRY_MAX_MS: '2000',
      MAX_ATTEMPTS: '4',
      CALLBACK_TIMEOUT_MS: '1000',
      // Every route here is one origin; its deliberate failures must not open the partner's circuit.
      BREAKER_MIN_ATTEMPTS: '1000000',
    }),
  );
});

afterAll(async () => {
  await stopAllDaemons();
  await receiver.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

const finalStatus = async (id: number) => {
  const order = await getOrder(database.db, id);
  return order.status === 5 ? undefined : order;
};

describe('a partner that answers 2xx', () => {
  it('gets one signed POST and the order moves 5 -> 6 with the attempt logged', async () => {
    await insertOrders(database.db, [1], receiver.url('/ok'), { sku: 'A-1', qty: 2 });
    const order = await waitFor('order 1 to finish', () => finalStatus(1));

    expect(order.status).toBe(6);
    expect(order.attempts).toBe(1);
    expect(order.delivered_at).toBeInstanceOf(Date);
    expect(order.version).toBe(1); // +1 for the one status change
    expect(order.claim_token).toBeNull();

    const [request] = receiver.requestsFor('order-1');
    expect(receiver.requestsFor('order-1')).toHaveLength(1);
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request.body)).toEqual({ orderId: '1', payload: { sku: 'A-1', qty: 2 } });
    // The reference implementation accepts it: id, timestamp and signature per the spec.
    const verified = new Webhook(TEST_SECRET).verify(request.body, {
      'webhook-id': String(request.headers['webhook-id']),
      'webhook-timestamp': String(request.headers['webhook-timestamp']),
      'webhook-signature': String(request.headers['webhook-signature']),
    });
    expect(verified).toEqual({ orderId: '1', payload: { sku: 'A-1', qty: 2 } });

    const log = await database.db('delivery_log').where({ order_id: 1 });
    expect(log).toMatchObject([{ attempt: 1, http_status: 200, outcome: 'delivered', worker: 'test-worker', superseded: false }]);
  });

  it('is told again when the order system sets a delivered order back to 5: a finished job never blocks re-enqueueing', async () => {
    await insertOrders(database.db, [2], receiver.url('/ok'));
    await waitFor('first delivery', async () => (await getOrder(database.db, 2)).status === 6);
    await database.db('orders').where({ id: 2 }).update({ status: 5 });
    await waitFor(
      'second delivery',
      async () => (await getOrder(database.db, 2)).status === 6 && receiver.requestsFor('order-2').length === 2,
    );
    expect(receiver.requestsFor('order-2').map((r) => r.headers['webhook-id'])).toEqual(['order-2', 'order-2']);
  });
});

describe('answers that mean "not now" are retried with the same webhook-id', () => {
  it.each([500, 503, 408, 425, 429])('HTTP %i, then 200: delivered on the second attempt', async (status) => {
    const id = 100 + status;
    routes.set(`/flaky-${status}`, (_r, attempt) => (attempt === 1 ? { status } : { status: 200 }));
    await insertOrders(database.db, [id], receiver.url(`/flaky-${status}`));
    const order = await waitFor(`order ${id}`, () => finalStatus(id));

    expect(order.status).toBe(6);
    expect(order.attempts).toBe(2);
    const requests = receiver.requestsFor(`order-${id}`);
    expect(requests).toHaveLength(2);
    expect(new Set(requests.map((r) => r.headers['webhook-id']))).toEqual(new Set([`order-${id}`]));
    const log = await database.db('delivery_log').where({ order_id: id }).orderBy('attempt');
    expect(log.map((l) => [l.attempt, l.http_status, l.outcome])).toEqual([
      [1, status, 'retry'],
      [2, 200, 'delivered'],
    ]);
  });

  it('a redirect is never followed and counts as a failed attempt', async () => {
    routes.set('/moved', () => ({ status: 302, headers: { location: receiver.url('/elsewhere') } }));
    await insertOrders(database.db, [301], receiver.url('/moved'));
    const order = await waitFor('order 301', () => finalStatus(301));

    expect(receiver.requests.filter((r) => r.path === '/elsewhere')).toHaveLength(0);
    expect(order.status).toBe(7);
    expect(order.attempts).toBe(4);
    expect(order.last_error).toMatch(/302 redirect/);
  });

  it('Retry-After is honoured, within the retry ceiling', async () => {
    // A Retry-After pauses the whole partner (docs/partners.md): this one has a partner of its own, so
    // the routes of the other tests are not paused with it.
    const pausing = await new Receiver((request, attempt) =>
      attempt > 1 ? { status: 200 } : { status: 429, headers: { 'retry-after': request.path === '/slow-down' ? '1' : '86400' } },
    ).start();
    try {
      await insertOrders(database.db, [429], pausing.url('/slow-down'));
      await insertOrders(database.db, [430], pausing.url('/slow-down-a-lot'));
      await waitFor('orders 429 and 430', async () => (await finalStatus(429)) && (await finalStatus(430)));

      const gap = (id: string) => {
        const [first, second] = pausing.requestsFor(id);
        return second.startedAt - first.startedAt;
      };
      expect(gap('order-429')).toBeGreaterThanOrEqual(950); // one second asked; our own backoff is <= 50 ms
      const capped = gap('order-430'); // a day asked; capped at RETRY_MAX_MS (2 s)
      expect(capped).toBeGreaterThanOrEqual(1900);
      expect(capped).toBeLessThan(10_000);
    } finally {
      await pausing.stop();
    }
  });

  it('a timeout, a refused connection and a dropped connection are retried until MAX_ATTEMPTS, then 7', async () => {
    routes.set('/hang', () => ({ never: true }));
    routes.set('/hang-up', () => ({ hangUp: true }));
    await insertOrders(database.db, [501], receiver.url('/hang'));
    await insertOrders(database.db, [502], receiver.url('/hang-up'));
    await insertOrders(database.db, [503], 'http://127.0.0.1:9/nothing-listens-here');
    const [timedOut, droppedOff, refused] = await Promise.all([501, 502, 503].map((id) => waitFor(`order ${id}`, () => finalStatus(id))));

    for (const order of [timedOut, droppedOff, refused]) {
      expect(order.status).toBe(7);
      expect(order.attempts).toBe(4);
      expect(order.last_error).toMatch(/gave up after 4 attempts/);
    }
    expect(timedOut.last_error).toMatch(/timed out after 1000 ms/);
    expect(refused.last_error).toMatch(/ECONNREFUSED/);
    expect(receiver.requestsFor('order-501')).toHaveLength(4);
    expect(await database.db('delivery_log').where({ order_id: 501 })).toHaveLength(4);
  });
});

describe('answers and rows that can never succeed end 7 at once', () => {
  it.each([400, 404, 410, 413, 422])('HTTP %i: failed for good after one attempt, with the reason', async (status) => {
    const id = 600 + status;
    routes.set(`/no-${status}`, () => ({ status, body: `nope ${status}` }));
    await insertOrders(database.db, [id], receiver.url(`/no-${status}`));
    const order = await waitFor(`order ${id}`, () => finalStatus(id));

    expect(order.status).toBe(7);
    expect(order.attempts).toBe(1);
    expect(order.last_error).toBe(`HTTP ${status}: nope ${status}`);
    expect(receiver.requestsFor(`order-${id}`)).toHaveLength(1);
  });

  it.each([401, 403])('HTTP %i is not one of them: retried until MAX_ATTEMPTS, since a partner fixes its secret', async (status) => {
    const id = 700 + status;
    routes.set(`/auth-${status}`, () => ({ status, body: `denied ${status}` }));
    await insertOrders(database.db, [id], receiver.url(`/auth-${status}`));
    const order = await waitFor(`order ${id}`, () => finalStatus(id));

    expect(order.status).toBe(7);
    expect(order.attempts).toBe(4);
    expect(order.last_error).toBe(`HTTP ${status}: denied ${status} (gave up after 4 attempts)`);
    expect(receiver.requestsFor(`order-${id}`)).toHaveLength(4);
  });

  it('bad rows fail with a clear reason and never hold up the good rows behind them', async () => {
    const bad: [number, string | null, unknown, RegExp][] = [
      [701, 'not a url', {}, /not a valid URL/],
      [702, 'ftp://127.0.0.1/x', {}, /scheme ftp is not http or https/],
      [703, null, {}, /callback_url is empty/],
      [704, receiver.url('/ok'), [1, 2], /payload is not a JSON object/],
      [705, receiver.url('/ok'), 'just text', /payload is not a JSON object/],
    ];
    for (const [id, url, payload] of bad) await insertOrders(database.db, [id], url, payload);
    const good = Array.from({ length: 50 }, (_, i) => 800 + i);
    await insertOrders(database.db, good, receiver.url('/ok'));

    for (const [id, , , reason] of bad) {
      const order = await waitFor(`order ${id}`, () => finalStatus(id));
      expect(order.status).toBe(7);
      expect(order.last_error).toMatch(reason);
    }
    await waitFor('the good rows', async () => (await database.db('orders').whereIn('id', good).where({ status: 6 })).length === 50);
    expect(receiver.requests.filter((r) => ['order-704', 'order-705'].includes(r.webhookId))).toHaveLength(0);
  });
});

describe('prompt pick-up', () => {
  it('an order that becomes ready is delivered long before the next poll (LISTEN/NOTIFY)', async () => {
    const slowDb = await createTestDatabase();
    const slowQueue = uniqueQueueName();
    const slow = await startTestDaemon(
      'start',
      daemonEnv(slowDb.url, slowQueue, {
        CALLBACK_ALLOW_PRIVATE: 'true',
        POLL_INTERVAL_MS: '3600000',
      }),
    );
    try {
      // The first run happens at start; everything after it must come from a notification.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await insertOrders(slowDb.db, [1001], receiver.url('/ok'));
      await insertOrders(slowDb.db, [1002], receiver.url('/ok'), {}, 3);
      await slowDb.db('orders').where({ id: 1002 }).update({ status: 5 });
      await waitFor('both orders delivered', async () => (await slowDb.db('orders').where({ status: 6 })).length === 2, 20_000);
    } finally {
      await slow.stop();
      await slowDb.drop();
      await obliterateQueue(slowQueue);
    }
  });
});

describe('with CALLBACK_ALLOW_PRIVATE=false (the default)', () => {
  it('a callback_url on a loopback or private address ends 7 at once and is never contacted', async () => {
    const strictDb = await createTestDatabase();
    const strictQueue = uniqueQueueName();
    const strict = await startTestDaemon(
      'start',
      daemonEnv(strictDb.url, strictQueue, {
        POLL_INTERVAL_MS: '100',
        CALLBACK_ALLOWED_PORTS: '*', // the receiver's port is random; the address is what is refused here
      }),
    );
    try {
      await insertOrders(strictDb.db, [1], receiver.url('/private-literal'));
      await insertOrders(strictDb.db, [2], `http://localhost:${receiver.port}/private-name`);
      await insertOrders(strictDb.db, [3], 'http://[::ffff:169.254.169.254]/latest/meta-data');
      const orders = await waitFor('all three to fail', async () => {
        const rows: OrderRow[] = await strictDb.db('orders').orderBy('id');
        return rows.every((r) => r.status === 7) ? rows : undefined;
      });
      expect(orders.map((o) => o.attempts)).toEqual([1, 1, 1]);
      expect(orders[0].last_error).toMatch(/127\.0\.0\.1 is loopback/);
      expect(orders[1].last_error).toMatch(/localhost resolves to .* \(loopback\)/);
      expect(orders[2].last_error).toMatch(/linkLocal/);
      expect(receiver.requests.filter((r) => r.path.startsWith('/private'))).toHaveLength(0);
    } finally {
      await strict.stop();
      await strictDb.drop();
      await obliterateQueue(strictQueue);
    }
  });
});

describe('with CALLBACK_ALLOWED_CIDRS', () => {
  it('an allow-listed private range is reached, by address and by name; the default ports still apply', async () => {
    const listDb = await createTestDatabase();
    const listQueue = uniqueQueueName();
    const listed = await startTestDaemon(
      'start',
      daemonEnv(listDb.url, listQueue, {
        POLL_INTERVAL_MS: '100',
        CALLBACK_ALLOWED_CIDRS: '127.0.0.0/8, ::1/128', // localhost may resolve to either
        CALLBACK_ALLOWED_PORTS: `443,${receiver.port}`,
      }),
    );
    try {
      await insertOrders(listDb.db, [1], receiver.url('/listed-literal'));
      await insertOrders(listDb.db, [2], `http://localhost:${receiver.port}/listed-name`);
      await insertOrders(listDb.db, [3], `http://127.0.0.1:${receiver.port + 1}/other-port`);
      const orders = await waitFor('all three final', async () => {
        const rows: OrderRow[] = await listDb.db('orders').orderBy('id');
        return rows.every((r) => r.status !== 5) ? rows : undefined;
      });
      expect(orders.map((o) => o.status)).toEqual([6, 6, 7]);
      expect(orders[2].last_error).toMatch(/port \d+ is not allowed/);
      expect(
        receiver.requests
          .filter((r) => r.path.startsWith('/listed'))
          .map((r) => r.path)
          .sort(),
      ).toEqual(['/listed-literal', '/listed-name']);
    } finally {
      await listed.stop();
      await listDb.drop();
      await obliterateQueue(listQueue);
    }
  });
});
