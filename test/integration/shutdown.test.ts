import { daemonEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { obliterateQueue, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let queueName: string;
let receiver: Receiver | undefined;
let env: Record<string, string>;

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
  env = daemonEnv(database.url, queueName, {
    CALLBACK_ALLOW_PRIVATE: 'true',
    POLL_INTERVAL_MS: '100',
    CALLBACK_TIMEOUT_MS: '20000',
  });
});

afterEach(async () => {
  await stopAllDaemons();
  await receiver?.stop();
  receiver = undefined;
  await database.drop();
  await obliterateQueue(queueName);
});

const ids = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

it('SIGTERM with callbacks in flight lets them finish, then exits 0', async () => {
  receiver = await new Receiver(() => ({ status: 200, delayMs: 1500 })).start();
  const daemon = await spawnDaemon('start', env);
  await insertOrders(database.db, ids(5), receiver.url());
  await waitFor('5 callbacks in flight', () => receiver!.inFlight() === 5);

  const signalledAt = Date.now();
  daemon.signal('SIGTERM');
  expect(await daemon.exited).toEqual({ code: 0, signal: null });

  expect((await statusCounts(database.db))[6]).toBe(5);
  expect(receiver.requests).toHaveLength(5);
  expect(receiver.requests.every((r) => r.endedAt !== undefined)).toBe(true);
  // All five were seen in flight before the signal; Date.now() can give the fifth's arrival the same millisecond.
  expect(receiver.requests.every((r) => r.startedAt <= signalledAt)).toBe(true);
  const messages = daemon.lines.map((l) => l.msg);
  expect(messages).toContain('stopping: no new work; waiting for callbacks in flight');
  expect(messages[messages.length - 1]).toBe('stopped');
});

it('callbacks still in flight when the grace period ends are aborted and handed back at once', async () => {
  receiver = await new Receiver(() => ({ never: true })).start();
  const daemon = await spawnDaemon('start', { ...env, SHUTDOWN_GRACE_MS: '500' });
  await insertOrders(database.db, ids(3), receiver.url());
  await waitFor('3 callbacks in flight', () => receiver!.inFlight() === 3);

  daemon.signal('SIGTERM');
  expect(await daemon.exited).toEqual({ code: 0, signal: null });

  const orders = await database.db('orders').orderBy('id');
  for (const order of orders) {
    expect(order).toMatchObject({ status: 5, attempts: 0, claim_token: null, lease_until: null });
  }
  const log = await database.db('delivery_log').orderBy('order_id');
  expect(log.map((l) => [Number(l.order_id), l.outcome])).toEqual([
    [1, 'released'],
    [2, 'released'],
    [3, 'released'],
  ]);

  // The next replica delivers them straight away: nothing waits for a lease to run out.
  receiver.behaviour = () => ({ status: 200 });
  await spawnDaemon('start', env);
  await waitFor('the handed-back orders delivered', async () => (await statusCounts(database.db))[6] === 3, 10_000);
});

it('a second signal aborts the callbacks in flight at once', async () => {
  receiver = await new Receiver(() => ({ never: true })).start();
  const daemon = await spawnDaemon('start', { ...env, SHUTDOWN_GRACE_MS: '600000' });
  await insertOrders(database.db, ids(2), receiver.url());
  await waitFor('2 callbacks in flight', () => receiver!.inFlight() === 2);

  daemon.signal('SIGTERM');
  await daemon.waitForLog('the first signal taken', (l) => String(l.msg).startsWith('stopping'));
  daemon.signal('SIGINT');
  // Bounded well below the 10-minute grace: only the second signal can have ended it.
  const exit = await Promise.race([daemon.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 20_000))]);
  expect(exit).toEqual({ code: 0, signal: null });
  const log = await database.db('delivery_log');
  expect(log.map((l) => l.outcome)).toEqual(['released', 'released']);
  expect((await statusCounts(database.db))[5]).toBe(2);
});

it('a graceful restart mid-run never delivers an order twice', async () => {
  receiver = await new Receiver(() => ({ status: 200, delayMs: 30 })).start();
  const config = { ...env, WORKER_CONCURRENCY: '10', MAX_QUEUED_JOBS: '40' };
  const first = await spawnDaemon('start', config);
  await insertOrders(database.db, ids(400), receiver.url());
  await waitFor('deliveries under way', async () => ((await statusCounts(database.db))[6] ?? 0) >= 100);

  first.signal('SIGTERM');
  expect(await first.exited).toEqual({ code: 0, signal: null });
  expect((await statusCounts(database.db))[5]).toBeGreaterThan(0); // it really stopped mid-run
  await spawnDaemon('start', config);
  await waitFor('every order delivered', async () => (await statusCounts(database.db))[6] === 400, 60_000);

  expect(receiver.overlaps.size).toBe(0);
  expect(receiver.countsById().size).toBe(400);
  expect([...receiver.countsById().values()].filter((n) => n > 1)).toEqual([]);
});

it('SIGTERM stops fetching first: no callback starts after it, those in flight finish, the rest wait at 5 for the next replica', async () => {
  receiver = await new Receiver(() => ({ status: 200, delayMs: 300 })).start();
  const daemon = await spawnDaemon('start', { ...env, WORKER_CONCURRENCY: '4', HOST_MAX_IN_FLIGHT: '4' });
  await insertOrders(database.db, ids(200), receiver.url());
  await waitFor(
    'a few delivered and 4 in flight',
    async () => ((await statusCounts(database.db))[6] ?? 0) >= 8 && receiver!.inFlight() === 4,
  );

  const signalledAt = Date.now();
  daemon.signal('SIGTERM');
  expect(await daemon.exited).toEqual({ code: 0, signal: null });
  expect(receiver.requests.filter((r) => r.startedAt > signalledAt + 5)).toEqual([]);
  const counts = await statusCounts(database.db);
  expect(counts[6]).toBe(receiver.requests.length); // each one sent was recorded
  expect(counts[5]).toBe(200 - receiver.requests.length);
  expect(Number((await database.db.raw('SELECT coalesce(max(attempts), 0) AS n FROM orders WHERE status = 5')).rows[0].n)).toBe(0);
});

it("PM2's kill_timeout is longer than the daemon's own deadline for a stop, however the grace period is set", async () => {
  const { shutdownDeadlineMs } = await import('../../src/shutdown-budget');
  const { loadConfig } = await import('../../src/config');
  const settings: Record<string, string>[] = [
    {},
    { CALLBACK_TIMEOUT_MS: '2000' },
    { SHUTDOWN_GRACE_MS: '120000' },
    { CALLBACK_TIMEOUT_MS: '60000' },
  ];
  for (const setting of settings) {
    const saved = Object.fromEntries(Object.keys(setting).map((key) => [key, process.env[key]]));
    Object.assign(process.env, setting);
    try {
      let apps: { kill_timeout: number }[] = [];
      jest.isolateModules(() => {
        apps = (require('../../ecosystem.config.js') as { apps: { kill_timeout: number }[] }).apps;
      });
      const deadline = shutdownDeadlineMs(loadConfig(process.env).shutdownGraceMs);
      expect(apps.length).toBe(3);
      for (const app of apps) expect(app.kill_timeout).toBeGreaterThan(deadline);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  }
});
