import { Redis } from 'ioredis';
import { Client } from 'pg';

import { createDb, sessionBounds } from '../../src/db/connection';
import { SilenceWatch } from '../../src/db/end-silent-connections';
import { createLogger } from '../../src/observability/logger';
import { type ChildDaemon, deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
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

/** /readyz's status, and the checks it names as failed (none when it did not answer at all). */
async function readyz(port: number): Promise<{ status: number; failed: string[] }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { failed?: string[] };
    return { status: res.status, failed: body.failed ?? [] };
  } catch {
    return { status: 0, failed: [] };
  }
}

/** Records the checks /readyz names as failed until stopped, for "it went red while stuck, and green again". */
function watchReadiness(port: number): { failed: Set<string>; stop(): Promise<void> } {
  const failed = new Set<string>();
  let stopped = false;
  const watching = (async () => {
    while (!stopped) {
      for (const name of (await readyz(port)).failed) failed.add(name);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  return {
    failed,
    stop: () => {
      stopped = true;
      return watching;
    },
  };
}

async function runThroughSilence(daemon: ChildDaemon, metricsPort: number, boundMs: number): Promise<Set<string>> {
  await insertOrders(database.db, ids(1, 300), receiver.url());
  await waitFor('some orders delivered before the silence', async () => (await delivered()) >= 50, 30_000);
  const readiness = watchReadiness(metricsPort);
  try {
    expect(proxy!.silence()).toBeGreaterThan(0);
    await insertOrders(database.db, ids(301, 200), receiver.url());
    await waitFor('every order delivered after the silence', async () => (await delivered()) === 500, boundMs);
    await waitFor('/readyz green again', async () => (await readyz(metricsPort)).status === 200, 10_000);
  } finally {
    await readiness.stop();
  }
  expect(receiver.countsById().size).toBe(500);
  expect(daemon.child.exitCode).toBeNull();
  return readiness.failed;
}

it('Postgres connections that go silent are ended and replaced; every order is delivered', async () => {
  proxy = await new SilentProxy(Number(new URL(database.url).port || 5432)).start();
  const metricsPort = await freePort();
  const daemon = await spawnDaemon(
    'start',
    deliveryEnv(through(database.url, proxy.port), queueName, SHARED_REDIS_URL, {
      WORKER_CONCURRENCY: '20',
      DATABASE_STATEMENT_TIMEOUT_MS: '2000',
      METRICS_PORT: String(metricsPort),
    }),
  );

  // A silent statement is given up 7 s after it was sent here (the statement timeout, and 5 s more).
  // A claim that committed before its reply was lost leaves its order until the claim runs out (25 s
  // by default); the rest is retries and the backlog.
  const failed = await runThroughSilence(daemon, metricsPort, 60_000);
  expect(failed).toContain('postgres');
  expect(daemon.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('did not answer'))).toBe(true);
}, 120_000);

it('Redis connections that go silent are ended and replaced; every order is delivered', async () => {
  proxy = await new SilentProxy(Number(new URL(SHARED_REDIS_URL).port || 6379)).start();
  const metricsPort = await freePort();
  const daemon = await spawnDaemon(
    'start',
    deliveryEnv(database.url, queueName, through(SHARED_REDIS_URL, proxy.port), {
      WORKER_CONCURRENCY: '20',
      REDIS_SOCKET_TIMEOUT_MS: '15000',
      METRICS_PORT: String(metricsPort),
    }),
  );

  const failed = await runThroughSilence(daemon, metricsPort, 60_000);
  expect(failed).toContain('redis');
}, 120_000);

it("a producer's LISTEN session that goes silent is found by its heartbeat and opened again", async () => {
  proxy = await new SilentProxy(Number(new URL(database.url).port || 5432)).start();
  // Polling once an hour: after the first look, only a notification wakes the producer.
  const daemon = await spawnDaemon(
    'start',
    deliveryEnv(through(database.url, proxy.port), queueName, SHARED_REDIS_URL, {
      POLL_INTERVAL_MS: '3600000',
      DATABASE_STATEMENT_TIMEOUT_MS: '2000',
    }),
  );
  await insertOrders(database.db, ids(1, 20), receiver.url());
  await waitFor('the first orders delivered on their notification', async () => (await delivered()) === 20, 10_000);
  // Long enough for the producer's last runs to find nothing and let its lease go: from here on, only a
  // notification, or a new session looking once, starts a run.
  await new Promise((resolve) => setTimeout(resolve, 3000));

  proxy.silence();
  await insertOrders(database.db, ids(21, 20), receiver.url());
  // The heartbeat (every 10 s) gets no answer within 7 s; the new session looks for ready orders at
  // once. A run that meets a silent pooled connection fails 7 s later and is tried again within a second.
  await waitFor('orders inserted during the silence delivered', async () => (await delivered()) === 40, 60_000);
  expect(daemon.child.exitCode).toBeNull();
}, 90_000);

it('a connection that idled past the bound, then went silent, is still ended when it is asked something', async () => {
  proxy = await new SilentProxy(Number(new URL(database.url).port || 5432)).start();
  const client = new Client({ connectionString: through(database.url, proxy.port) });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const watch = new SilenceWatch(500, 1500, () => undefined);
    watch.watch(client);
    await client.query('SELECT 1');
    // Idle for longer than the bound: the idle timeout fires with nothing asked, and must not be the
    // last time the connection is looked at.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(watch.overdueCount()).toBe(0);
    proxy.silence();
    const asked = performance.now();
    const answer = client.query('SELECT 1');
    answer.catch(() => undefined);
    await waitFor('the statement overdue', () => watch.overdueCount() === 1, 1400);
    await expect(answer).rejects.toThrow(/did not answer within 1500 ms/);
    expect(performance.now() - asked).toBeLessThan(5000);
    expect(watch.overdueCount()).toBe(0);
  } finally {
    await client.end().catch(() => undefined);
  }
}, 20_000);

it("the daemon's pooled sessions run with its statement and idle-transaction timeouts, set after the startup message", async () => {
  proxy = await new SilentProxy(Number(new URL(database.url).port || 5432)).start();
  const db = createDb(through(database.url, proxy.port), 1, sessionBounds(2500, createLogger('silent')));
  try {
    const settings = await db.raw<{ rows: { name: string; setting: string }[] }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout') ORDER BY name",
    );
    expect(settings.rows).toEqual([
      { name: 'idle_in_transaction_session_timeout', setting: '2500' },
      { name: 'statement_timeout', setting: '2500' },
    ]);
    await expect(db.raw('SELECT pg_sleep(5)')).rejects.toThrow(/statement timeout/);
    // Not startup parameters, which PgBouncer refuses ("unsupported startup parameter").
    const startup = proxy.firstChunks[0].toString('latin1');
    expect(startup).toContain('application_name');
    expect(startup).not.toContain('statement_timeout');
    expect(startup).not.toContain('idle_in_transaction_session_timeout');
  } finally {
    await db.destroy();
  }
});

it('a Redis connection cut with a command in flight comes back, and its silence timer does not end the new one', async () => {
  proxy = await new SilentProxy(Number(new URL(SHARED_REDIS_URL).port || 6379)).start();
  const redis = new Redis(through(SHARED_REDIS_URL, proxy.port), { socketTimeout: 4000, maxRetriesPerRequest: null });
  const closes: number[] = [];
  redis.on('close', () => closes.push(performance.now()));
  redis.on('error', () => undefined);
  try {
    await redis.ping();
    // A blocking pop that waits 1 s for nothing: the command is out, no data comes back meanwhile.
    const pop = redis.blpop(`${queueName}:nothing`, 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    proxy.cut();
    await pop; // sent again on the new connection, where it times out as asked
    // Past the silence timer armed for the first send: ioredis 5 let it fire on the new connection.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    expect(closes).toHaveLength(1);
    expect(await redis.ping()).toBe('PONG');
  } finally {
    redis.disconnect();
  }
}, 20_000);
