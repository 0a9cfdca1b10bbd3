import { daemonEnv, startTestDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type OrderRow, type TestDatabase } from '../helpers/database';
import { obliterateQueue, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let receiver: Receiver;
const queueName = uniqueQueueName();

beforeAll(async () => {
  database = await createTestDatabase();
  receiver = await new Receiver((request) => {
    if (request.path === '/huge-ok') return { endless: 200 };
    if (request.path === '/huge-error') return { endless: 500 };
    return { status: 200 };
  }).start();
});

afterAll(async () => {
  await stopAllDaemons();
  await receiver.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

it('hostile rows and partners end with a clear last_error, crash nothing, and hold up none of the good rows', async () => {
  const port = receiver.port;
  const hostile: [string, string | null, unknown, number, RegExp][] = [
    ['credentials in the URL', `http://user:pass@127.0.0.1:${port}/x`, {}, 7, /carries credentials/],
    ['decimal IPv4 for a private address', 'http://3232235777/', {}, 7, /192\.168\.1\.1 is private/],
    ['hex IPv4 for cloud metadata', 'http://0xa9.254.169.254/latest', {}, 7, /169\.254\.169\.254 is linkLocal/],
    ['octal IPv4 for cloud metadata', 'http://0251.0376.0251.0376/', {}, 7, /169\.254\.169\.254 is linkLocal/],
    ['IPv6 link-local literal', `http://[fe80::1]:${port}/`, {}, 7, /fe80::1 is linkLocal/],
    ['IPv4-mapped IPv6 for a private address', 'http://[::ffff:10.0.0.1]/', {}, 7, /::ffff:a00:1 is private/],
    ['a port out of range', 'http://127.0.0.1:70000/', {}, 7, /not a valid URL/],
    ['a port not allowed', 'http://127.0.0.1:8080/', {}, 7, /port 8080 is not allowed/],
    ['a very long URL', `http://127.0.0.1:${port}/${'a'.repeat(5000)}`, {}, 7, /longer than 2048/],
    ['a javascript: URL', 'javascript:alert(1)', {}, 7, /scheme javascript/],
    ['a payload that is an array', receiver.url('/ok'), [1, 2], 7, /payload is not a JSON object/],
    ['a payload that is a number', receiver.url('/ok'), 42, 7, /payload is not a JSON object/],
    ['a payload over MAX_PAYLOAD_BYTES', receiver.url('/ok'), { blob: 'x'.repeat(5000) }, 7, /over the 4096-byte limit/],
    ['an IDN host that does not resolve', 'http://例え.テスト/', {}, 7, /ENOTFOUND .*gave up after 2 attempts/],
    ['a punycode host that does not resolve', 'http://xn--r8jz45g.xn--zckzah/', {}, 7, /ENOTFOUND .*gave up after 2 attempts/],
    ['a partner answering 500 with an endless body', receiver.url('/huge-error'), {}, 7, /HTTP 500: x{20}.*gave up after 2 attempts/],
    ['a partner answering 200 with an endless body', receiver.url('/huge-ok'), {}, 6, /^$/],
    ['a CR/LF header injection in the URL', `${receiver.url('/inject')}\r\nX-Injected: yes`, {}, 6, /^$/],
  ];
  const good = Array.from({ length: 30 }, (_, i) => 1000 + i);
  await startTestDaemon(
    'start',
    daemonEnv(database.url, queueName, {
      POLL_INTERVAL_MS: '100',
      MAX_ATTEMPTS: '2',
      RETRY_BASE_MS: '20',
      RETRY_MAX_MS: '40',
      CALLBACK_TIMEOUT_MS: '3000',
      MAX_PAYLOAD_BYTES: '4096',
      // Private destinations stay refused; only the test receiver's loopback address and port are let in.
      CALLBACK_ALLOWED_CIDRS: '127.0.0.0/8',
      CALLBACK_ALLOWED_PORTS: `80,443,${port}`,
    }),
  );
  for (const [i, [, url, payload]] of hostile.entries()) await insertOrders(database.db, [i + 1], url, payload);
  await insertOrders(database.db, good, receiver.url('/ok'));

  const rows = await waitFor(
    'every order final',
    async () => {
      const all: OrderRow[] = await database.db('orders').orderBy('id');
      return all.every((o) => o.status !== 5) ? all : undefined;
    },
    60_000,
  );
  for (const [i, [what, , , status, reason]] of hostile.entries()) {
    const row = rows.find((o) => Number(o.id) === i + 1)!;
    expect({ what, status: row.status, error: row.last_error ?? '' }).toEqual({ what, status, error: expect.stringMatching(reason) });
  }
  expect(rows.filter((o) => Number(o.id) >= 1000).every((o) => o.status === 6)).toBe(true);

  const injected = receiver.requests.filter((r) => r.path.startsWith('/inject'));
  expect(injected).toHaveLength(1);
  expect(injected[0].headers['x-injected']).toBeUndefined();
  // What reached a header came from us alone.
  expect(Object.keys(injected[0].headers).filter((h) => h.startsWith('webhook-'))).toEqual([
    'webhook-id',
    'webhook-timestamp',
    'webhook-signature',
  ]);
});
