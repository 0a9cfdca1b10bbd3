import net from 'node:net';

import { daemonEnv, spawnDaemon, startTestDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { freePort } from '../helpers/free-port';
import { obliterateQueue, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { PrivateRedis } from '../helpers/redis-server';
import { waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let queueName: string;

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
});

afterEach(async () => {
  await stopAllDaemons();
  await database.drop();
  await obliterateQueue(queueName);
});

/** One sample's value from Prometheus text, e.g. sample(text, 'x_total{outcome="delivered"}'). */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

it('/metrics counts what the table and the receiver saw', async () => {
  const receiver = await new Receiver((request, attempt) => {
    if (request.path === '/gone') return { status: 404 };
    if (request.path === '/flaky' && attempt === 1) return { status: 500 };
    return { status: 200 };
  }).start();
  try {
    const daemon = await startTestDaemon(
      'start',
      daemonEnv(database.url, queueName, {
        CALLBACK_ALLOW_PRIVATE: 'true',
        POLL_INTERVAL_MS: '50',
        RETRY_BASE_MS: '20',
        RETRY_MAX_MS: '40',
        METRICS_PORT: String(await freePort()),
      }),
    );
    await insertOrders(database.db, [1, 2, 3, 4, 5], receiver.url('/ok'));
    await insertOrders(database.db, [6, 7, 8], receiver.url('/flaky'));
    await insertOrders(database.db, [9, 10], receiver.url('/gone'));
    await waitFor('all final', async () => {
      const counts = await statusCounts(database.db);
      return counts[6] === 8 && counts[7] === 2;
    });

    const base = `http://127.0.0.1:${daemon.opsPort}`;
    // Orders at 6 and 7 are the planner's estimates: as exact as can be once a table this small is analyzed
    // (autovacuum would, later); one replica recomputes the order gauges every 5 s.
    await database.db.raw('ANALYZE orders');
    const text = await waitFor(
      'the order gauges recomputed after ANALYZE',
      async () => {
        const scraped = await (await fetch(`${base}/metrics`)).text();
        return sample(scraped, 'order_callbacks_orders{status="delivered"}') === 8 ? scraped : undefined;
      },
      15_000,
      250,
    );
    expect(sample(text, 'order_callbacks_deliveries_total{outcome="delivered"}')).toBe(8);
    expect(sample(text, 'order_callbacks_deliveries_total{outcome="retry"}')).toBe(3);
    expect(sample(text, 'order_callbacks_deliveries_total{outcome="failed"}')).toBe(2);
    // The counters agree with the attempts Postgres logged, outcome by outcome.
    const logged = await database.db('delivery_log').where({ superseded: false }).select('outcome').count('* as n').groupBy('outcome');
    expect(logged.length).toBe(3);
    for (const { outcome, n } of logged as { outcome: string; n: string }[]) {
      expect(sample(text, `order_callbacks_deliveries_total{outcome="${outcome}"}`)).toBe(Number(n));
    }
    // One worker, no shutdown: no duplicate finish, but the series is there for alerts from the start.
    expect(sample(text, 'order_callbacks_deliveries_total{outcome="duplicate_finish"}')).toBe(0);
    expect(sample(text, 'order_callbacks_deliveries_total{outcome="released"}')).toBe(0);
    expect(sample(text, 'order_callbacks_callback_duration_seconds_count')).toBe(receiver.requests.length);
    expect(sample(text, 'order_callbacks_attempts_per_delivered_order_count')).toBe(8);
    expect(sample(text, 'order_callbacks_attempts_per_delivered_order_sum')).toBe(5 * 1 + 3 * 2);
    expect(sample(text, 'order_callbacks_ready_to_delivered_seconds_count')).toBe(8);
    expect(sample(text, 'order_callbacks_orders{status="delivered"}')).toBe(8);
    expect(sample(text, 'order_callbacks_orders{status="failed"}')).toBe(2);
    expect(sample(text, 'order_callbacks_oldest_ready_age_seconds')).toBe(0);
    expect(sample(text, 'order_callbacks_order_gauges_age_seconds')).toBeLessThanOrEqual(6);
    for (const state of ['waiting', 'active', 'delayed', 'prioritized']) {
      expect(sample(text, `order_callbacks_queue_jobs{state="${state}"}`)).toBe(0);
    }
    expect(sample(text, 'order_callbacks_scrape_source_up{source="postgres"}')).toBe(1);
    expect(sample(text, 'order_callbacks_scrape_source_up{source="redis"}')).toBe(1);
    expect(sample(text, 'order_callbacks_enqueued_total')).toBe(13);
    expect(sample(text, 'order_callbacks_producer_poll_duration_seconds_count')).toBeGreaterThan(0);
    expect(sample(text, 'order_callbacks_producer_page_duration_seconds_count')).toBeGreaterThan(0);
    expect(text).toMatch(/^order_callbacks_process_cpu_seconds_total /m);
    // Partners: one seen (closed: reported at the process's next tick), none held, state shared; the hold
    // counters there from the start.
    const partners = await waitFor(
      'the partner counted',
      async () => {
        const scraped = await (await fetch(`${base}/metrics`)).text();
        return sample(scraped, 'order_callbacks_partners{state="closed"}') === 1 ? scraped : undefined;
      },
      10_000,
      250,
    );
    for (const state of ['open', 'half_open', 'paused', 'held'])
      expect(sample(partners, `order_callbacks_partners{state="${state}"}`)).toBe(0);
    for (const state of ['open', 'paused']) expect(sample(partners, `order_callbacks_partner_holds_total{state="${state}"}`)).toBe(0);
    expect(sample(partners, 'order_callbacks_partner_state_shared')).toBe(1);
    expect(partners).not.toMatch(/^order_callbacks_partner_not_closed_seconds\{/m);

    // Nobody has recomputed the order gauges for two minutes (no replica could, or would): they are not
    // shown rather than shown stale, and their age says why.
    await database.db.raw("UPDATE maintenance_turns SET last_started_at = now() + interval '1 hour' WHERE name = 'order-gauges'");
    await database.db.raw("UPDATE order_gauges SET computed_at = now() - interval '2 minutes'");
    const stale = await waitFor(
      'the stale order gauges dropped',
      async () => {
        const scraped = await (await fetch(`${base}/metrics`)).text();
        return Number.isNaN(sample(scraped, 'order_callbacks_oldest_ready_age_seconds')) ? scraped : undefined;
      },
      5000,
      250,
    );
    expect(stale).not.toMatch(/^order_callbacks_orders\{/m);
    expect(sample(stale, 'order_callbacks_order_gauges_age_seconds')).toBeGreaterThanOrEqual(120);
    expect(sample(stale, 'order_callbacks_scrape_source_up{source="postgres"}')).toBe(1);

    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    expect((await fetch(`${base}/nope`)).status).toBe(404);

    // Stopping the daemon closes its port: the server is released with everything else.
    await daemon.stop();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  } finally {
    await receiver.stop();
  }
});

it('/readyz turns 503 and names Redis when Redis stops answering; /healthz and /metrics still answer', async () => {
  const redis = await PrivateRedis.start();
  try {
    const daemon = await startTestDaemon(
      'start',
      daemonEnv(database.url, queueName, {
        REDIS_URL: redis.url,
        METRICS_PORT: String(await freePort()),
      }),
    );
    const base = `http://127.0.0.1:${daemon.opsPort}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    await waitFor(
      'the order gauges computed',
      async () => sample(await (await fetch(`${base}/metrics`)).text(), 'order_callbacks_orders{status="ready"}') === 0,
    );
    await redis.crash();
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: 'not ready', failed: ['redis'] });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // BullMQ waits for Redis forever; a scrape must not. The queue depths go away, the rest stays.
    const metrics = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) });
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(sample(text, 'order_callbacks_scrape_source_up{source="redis"}')).toBe(0);
    expect(sample(text, 'order_callbacks_scrape_source_up{source="postgres"}')).toBe(1);
    expect(text).not.toMatch(/^order_callbacks_queue_jobs\{/m);
    expect(sample(text, 'order_callbacks_orders{status="ready"}')).toBe(0);
    expect(text).toMatch(/^order_callbacks_process_cpu_seconds_total /m);
    await redis.restartEmpty(); // so that stopping is not a test of shutting down without Redis
    await waitFor('ready again', async () => (await fetch(`${base}/readyz`)).status === 200, 20_000);
  } finally {
    await stopAllDaemons();
    await redis.stop();
  }
});

it('the ops server is part of the lifecycle: SIGTERM closes it and the process exits 0', async () => {
  const port = await freePort();
  const daemon = await spawnDaemon(
    'worker',
    daemonEnv(database.url, queueName, {
      METRICS_PORT: String(port),
    }),
  );
  const base = `http://127.0.0.1:${port}`;
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  const ready = await fetch(`${base}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready' }); // the worker role: postgres, redis and the worker
  daemon.signal('SIGTERM');
  expect(await daemon.exited).toEqual({ code: 0, signal: null });
  await expect(fetch(`${base}/healthz`)).rejects.toThrow();
});

it('a METRICS_PORT that is taken stops the start with an error, instead of running unobserved', async () => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  try {
    const port = (taken.address() as net.AddressInfo).port;
    await expect(startTestDaemon('producer', daemonEnv(database.url, queueName, { METRICS_PORT: String(port) }))).rejects.toThrow(
      /EADDRINUSE/,
    );
  } finally {
    await new Promise((resolve) => taken.close(resolve));
  }
});
