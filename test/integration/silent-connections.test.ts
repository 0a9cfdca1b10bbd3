import { Client } from 'pg';
import { boundedSession, watchSilence } from '../../src/db/connection';
import { createLogger } from '../../src/observability/logger';
import { createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { spawnDaemon, stopAllDaemons, type ChildDaemon } from '../helpers/daemons';
import { freePort } from '../helpers/free-port';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { SilentProxy } from '../helpers/silent-proxy';
import { waitFor } from '../helpers/wait-for';

// Connections that go silent (no FIN, no RST) with work on them: a daemon whose every open connection to
// Postgres, or to Redis, stops answering must notice, open new ones, and deliver every order.

let database: TestDatabase;
let queueName: string;
let receiver: Receiver;
let proxy: SilentProxy | undefined;

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
  // Slow enough that statements and callbacks are in flight whenever the connections go silent.
  receiver = await new Receiver(() => ({ status: 200, delayMs: 50 })).start();
});

afterEach(async () => {
  await stopAllDaemons();
  await proxy?.close();
  proxy = undefined;
  await receiver.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

function ids(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

function through(url: string, port: number): string {
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(port);
  return proxied.toString();
}

async function delivered(): Promise<number> {
  return (await statusCounts(database.db))[6] ?? 0;
}

async function readyz(port: number): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(3000) });
    return res.status;
  } catch {
    return 0;
  }
}

/** Records every /readyz status until stopped, for "it went red while stuck, and green again". */
function watchReadiness(port: number): { seen: number[]; stop(): void } {
  const seen: number[] = [];
  let stopped = false;
  void (async () => {
    while (!stopped) {
      seen.push(await readyz(port));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  return { seen, stop: () => (stopped = true) };
}

async function runThroughSilence(daemon: ChildDaemon, metricsPort: number, boundMs: number): Promise<number[]> {
  await insertOrders(database.db, ids(1, 300), receiver.url());
  await waitFor('some orders delivered before the silence', async () => (await delivered()) >= 50, 30_000);
  const readiness = watchReadiness(metricsPort);
  try {
    expect(proxy!.silence()).toBeGreaterThan(0);
    await insertOrders(database.db, ids(301, 200), receiver.url());
    await waitFor('every order delivered after the silence', async () => (await delivered()) === 500, boundMs);
    await waitFor('/readyz green again', async () => (await readyz(metricsPort)) === 200, 10_000);
  } finally {
    readiness.stop();
  }
  expect(receiver.countsById().size).toBe(500);
  expect(daemon.child.exitCode).toBeNull();
  return readiness.seen;
}

it('Postgres connections that go silent are ended and replaced; every order is delivered', async () => {
  proxy = await new SilentProxy(Number(new URL(database.url).port || 5432)).start();
  const metricsPort = await freePort();
  const daemon = await spawnDaemon('start', {
    DATABASE_URL: through(database.url, proxy.port),
    REDIS_URL: SHARED_REDIS_URL,
    QUEUE_NAME: queueName,
    CALLBACK_ALLOW_PRIVATE: 'true',
    POLL_INTERVAL_MS: '100',
    WORKER_CONCURRENCY: '20',
    DATABASE_STATEMENT_TIMEOUT_MS: '2000',
    METRICS_PORT: String(metricsPort),
  });

  // A silent statement is given up 1.5 × the statement timeout after it was sent (3 s here); the rest
  // is retries, a claim's lease or two, and the backlog.
  const seen = await runThroughSilence(daemon, metricsPort, 45_000);
  expect(seen).toContain(503);
  expect(daemon.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('did not answer'))).toBe(true);
}, 90_000);

it('Redis connections that go silent are ended and replaced; every order is delivered', async () => {
  proxy = await new SilentProxy(Number(new URL(SHARED_REDIS_URL).port || 6379)).start();
  const metricsPort = await freePort();
  const daemon = await spawnDaemon('start', {
    DATABASE_URL: database.url,
    REDIS_URL: through(SHARED_REDIS_URL, proxy.port),
    QUEUE_NAME: queueName,
    CALLBACK_ALLOW_PRIVATE: 'true',
    POLL_INTERVAL_MS: '100',
    WORKER_CONCURRENCY: '20',
    REDIS_SOCKET_TIMEOUT_MS: '11000',
    METRICS_PORT: String(metricsPort),
  });

  const seen = await runThroughSilence(daemon, metricsPort, 60_000);
  expect(seen).toContain(503);
}, 120_000);

it("a producer's LISTEN session that goes silent is found by its heartbeat and opened again", async () => {
  proxy = await new SilentProxy(Number(new URL(database.url).port || 5432)).start();
  // Polling once an hour: after the first look, only a notification wakes the producer.
  const daemon = await spawnDaemon('start', {
    DATABASE_URL: through(database.url, proxy.port),
    REDIS_URL: SHARED_REDIS_URL,
    QUEUE_NAME: queueName,
    CALLBACK_ALLOW_PRIVATE: 'true',
    POLL_INTERVAL_MS: '3600000',
    DATABASE_STATEMENT_TIMEOUT_MS: '2000',
  });
  await insertOrders(database.db, ids(1, 20), receiver.url());
  await waitFor('the first orders delivered on their notification', async () => (await delivered()) === 20, 10_000);

  proxy.silence();
  await insertOrders(database.db, ids(21, 20), receiver.url());
  // The heartbeat (every 10 s) gets no answer within 3 s; the new session looks for ready orders at once.
  await waitFor('orders inserted during the silence delivered', async () => (await delivered()) === 40, 30_000);
  expect(daemon.child.exitCode).toBeNull();
}, 60_000);

it('a connection that idled past the bound, then went silent, is still ended when it is asked something', async () => {
  proxy = await new SilentProxy(Number(new URL(database.url).port || 5432)).start();
  const client = new Client({ connectionString: through(database.url, proxy.port), ...boundedSession(1000) });
  client.on('error', () => undefined);
  await client.connect();
  try {
    watchSilence(client, 1000, createLogger('silent'));
    await client.query('SELECT 1');
    // Idle for longer than the bound (1.5 s): the idle timeout fires with nothing asked, and must not
    // be the last time it is looked at.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    proxy.silence();
    const asked = performance.now();
    await expect(client.query('SELECT 1')).rejects.toThrow(/did not answer within 1500 ms/);
    expect(performance.now() - asked).toBeLessThan(5000);
  } finally {
    await client.end().catch(() => undefined);
  }
}, 15_000);
