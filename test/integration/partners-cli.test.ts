import { runCli } from '../helpers/cli';
import { daemonEnv, deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { sleep, waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let queueName: string;
let env: Record<string, string>;

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
  env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, { WORKER_CONCURRENCY: '20', HOST_MAX_IN_FLIGHT: '8', LOG_LEVEL: 'info' });
});

afterEach(async () => {
  await stopAllDaemons();
  await database.drop();
  await obliterateQueue(queueName);
});

const delivered = async () => Number((await database.db.raw('SELECT count(*) AS n FROM orders WHERE status = 6')).rows[0].n);
const cliEnv = () => daemonEnv(database.url, queueName);

it('pause holds a partner on every replica within a second, is listed and audited; resume lets its orders go', async () => {
  const partner = await new Receiver(() => ({ status: 200, delayMs: 20 })).start();
  const other = await new Receiver(() => ({ status: 200 })).start();
  try {
    await insertOrders(
      database.db,
      Array.from({ length: 2500 }, (_, i) => i + 1),
      partner.url(),
    );
    await insertOrders(
      database.db,
      Array.from({ length: 300 }, (_, i) => 100_000 + i),
      other.url(),
    );
    await Promise.all([spawnDaemon('start', env), spawnDaemon('start', env)]);
    await waitFor('deliveries under way', async () => (await delivered()) > 200, 30_000);

    const origin = `http://127.0.0.1:${partner.port}`;
    const paused = await runCli(['partners', 'pause', origin, '--reason', 'their maintenance', '--actor', 'ops-test'], cliEnv());
    expect(paused).toMatchObject({ code: 0, stdout: `${origin}: closed -> held\n` });
    const pausedAt = Date.now();

    // Requests already open finish; none starts a second after the pause, from either replica.
    await sleep(3000);
    expect(partner.requests.filter((r) => r.startedAt > pausedAt + 1000)).toEqual([]);
    const waiting = 2500 - partner.requests.length;
    expect(waiting).toBeGreaterThan(1000);
    // Other partners go on.
    await waitFor('the other partner drained', async () => other.requests.length >= 300, 30_000);

    const listed = await runCli(['partners', '--json'], cliEnv());
    expect(listed.code).toBe(0);
    const rows = JSON.parse(listed.stdout) as Record<string, unknown>[];
    expect(rows[0]).toMatchObject({ origin, state: 'held', reason: 'their maintenance', actor: 'ops-test', until: null, inFlight: 0 });
    expect(Number(rows[0].ready)).toBeGreaterThan(1000);
    expect(rows.find((row) => row.origin === `http://127.0.0.1:${other.port}`)).toMatchObject({ state: 'closed', ready: 0 });
    const text = await runCli(['partners'], cliEnv());
    expect(text.stdout).toMatch(new RegExp(`^PARTNER +STATE .*\\n${origin.replace(/\./g, '\\.')} +held `));

    const resumed = await runCli(['partners', 'resume', origin, '--actor', 'ops-test'], cliEnv());
    expect(resumed).toMatchObject({ code: 0, stdout: `${origin}: held -> closed\n` });
    await waitFor('every order delivered', async () => (await delivered()) === 2800, 90_000);

    const audit = await database
      .db('partner_audit')
      .orderBy('id')
      .select('actor', 'action', 'origin', 'reason', 'paused_until', 'state_before', 'state_after');
    expect(audit).toEqual([
      {
        actor: 'ops-test',
        action: 'pause',
        origin,
        reason: 'their maintenance',
        paused_until: null,
        state_before: 'closed',
        state_after: 'held',
      },
      { actor: 'ops-test', action: 'resume', origin, reason: null, paused_until: null, state_before: 'held', state_after: 'closed' },
    ]);
  } finally {
    await Promise.all([partner.stop(), other.stop()]);
  }
}, 150_000);

it('pause --for ends by itself; a host name means every known partner on it; mistakes get one line', async () => {
  await insertOrders(database.db, [1], 'http://127.0.0.1:9/a');
  await insertOrders(database.db, [2], 'http://127.0.0.1:10/b');
  const byHost = await runCli(['partners', 'pause', '127.0.0.1', '--for', '2s', '--json'], cliEnv());
  expect(byHost.code).toBe(0);
  const changes = JSON.parse(byHost.stdout) as { origin: string; after: string; until: string }[];
  expect(changes.map((c) => [c.origin, c.after])).toEqual([
    ['http://127.0.0.1:10', 'held'],
    ['http://127.0.0.1:9', 'held'],
  ]);
  expect(Date.parse(changes[0].until) - Date.now()).toBeGreaterThan(500);
  await sleep(2500);
  const rows = JSON.parse((await runCli(['partners', '--json'], cliEnv())).stdout) as { state: string }[];
  expect(rows.map((row) => row.state)).toEqual(['half_open', 'half_open']); // every hold ends with probes

  expect(await runCli(['partners', 'pause', 'nobody.example'], cliEnv())).toMatchObject({
    code: 1,
    stderr:
      'order-callbacks: no partner on host nobody.example is known (seen lately or with orders at 5); give its origin, e.g. https://nobody.example\n',
  });
  expect(await runCli(['partners', 'pause', 'ftp://a.example'], cliEnv())).toMatchObject({
    code: 2,
    stderr: `order-callbacks: "ftp://a.example": a partner's origin is http:// or https://\n`,
  });
  expect(await runCli(['partners', 'pause', 'https://a.example', '--for', 'soon'], cliEnv())).toMatchObject({
    code: 2,
    stderr: expect.stringMatching(/^order-callbacks: --for: expected a duration/),
  });
  expect(await runCli(['partners', 'resume', 'https://a.example'], cliEnv())).toMatchObject({
    code: 0,
    stdout: 'https://a.example: closed, nothing to resume\n',
  });
}, 60_000);
