// inspect, stats, and the queries the status page shares with stats, on the real Postgres and Redis.
import { Queue } from 'bullmq';

import { deliveriesPerMinute, findRecentFailures, findTopFailingHosts } from '../../src/db/reports/recent-outcomes';
import { redisConnection } from '../../src/queue/callback-queue';
import { runCli } from '../helpers/cli';
import { daemonEnv } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';

let database: TestDatabase;
let queueName: string;

const env = () => daemonEnv(database.url, queueName);
const cli = (...args: string[]) => runCli(args, env());

const json = async (...args: string[]) => {
  const result = await cli(...args, '--json');
  expect(result).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(result.stdout);
};

/** Sets updated_at (which the trigger stamps on every update) by stepping around the triggers for the setup. */
async function setUpdatedAt(ids: number[], at: Date): Promise<void> {
  await database.db.transaction(async (tx) => {
    await tx.raw('SET LOCAL session_replication_role = replica');
    await tx('orders').whereIn('id', ids).update({ updated_at: at });
  });
}

/**
 * The attempts that ended `ids` at 7, `agoMs` ago: the failing hosts and recent failures are read from
 * a day of delivery_log.
 */
async function logFailures(ids: number[], agoMs = 3 * 3_600_000): Promise<void> {
  await database.db('delivery_log').insert(
    ids.map((id) => ({
      order_id: id,
      attempt: 1,
      started_at: new Date(Date.now() - agoMs),
      duration_ms: 5,
      outcome: 'failed',
      worker: 'w',
    })),
  );
}

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
  // 1-10 failed with a 500 at partner-a, 11-15 failed with a 404 at partner-b, 16 delivered, 17 ready.
  await insertOrders(
    database.db,
    Array.from({ length: 10 }, (_, i) => i + 1),
    'https://partner-a.example/cb',
    {},
    7,
  );
  await insertOrders(database.db, [11, 12, 13, 14, 15], 'https://u:p@Partner-B.example:8443/x?token=t', {}, 7);
  await insertOrders(database.db, [16], 'https://partner-a.example/cb', {}, 6);
  await insertOrders(database.db, [17], 'https://partner-a.example/cb', {}, 5);
  await database
    .db('orders')
    .whereBetween('id', [1, 10])
    .update({ last_error: 'HTTP 500: upstream down (gave up after 10 attempts)', attempts: 10 });
  await database.db('orders').whereBetween('id', [11, 15]).update({ last_error: 'HTTP 404: no_such_order', attempts: 1 });
  // stats counts the orders at 6 and 7 from the planner's statistics: exact for a table this small once analyzed.
  await database.db.raw('ANALYZE orders');
});

afterEach(async () => {
  await database.drop();
  await obliterateQueue(queueName);
});

describe('inspect', () => {
  it('shows the row with a redacted URL, every attempt, and where the job is', async () => {
    await database.db('delivery_log').insert([
      {
        order_id: 11,
        attempt: 1,
        started_at: new Date(),
        duration_ms: 12,
        http_status: 404,
        error: 'HTTP 404: no_such_order',
        outcome: 'failed',
        worker: 'host:1',
      },
    ]);
    const inspection = await json('inspect', '11');
    expect(inspection.order).toMatchObject({
      id: '11',
      status: 7,
      status_name: 'failed',
      attempts: 1,
      last_error: 'HTTP 404: no_such_order',
      delivered_at: null,
      version: 0,
    });
    expect(inspection.order.callback_url).toBe('https://redacted@partner-b.example:8443/x?token=redacted');
    expect(inspection.attempts).toMatchObject([
      { attempt: 1, duration_ms: 12, http_status: 404, outcome: 'failed', worker: 'host:1', superseded: false },
    ]);
    expect(inspection.job).toBe('absent');

    const text = await cli('inspect', '11');
    expect(text.stdout).toMatch(/^order 11: failed \(status 7, version 0\)\n/);
    expect(text.stdout).not.toMatch(/u:p@|token=t\b/);
    expect(text.stdout).toMatch(/last_error\s+HTTP 404: no_such_order\n/);
    expect(text.stdout).toMatch(/job in queue\s+absent\n/);
    expect(text.stdout).toMatch(/#1 .* 12 ms\s+failed\s+HTTP 404: no_such_order\s+\[host:1\]/);
  });

  it('finds the job of an order in the queue, however the id is written', async () => {
    const queue = new Queue(queueName, { connection: redisConnection(SHARED_REDIS_URL) });
    try {
      await queue.add('callback', { orderId: '17' }, { jobId: 'order-17' });
      await queue.add('callback', { orderId: '1' }, { jobId: 'order-1', delay: 60_000 });
    } finally {
      await queue.close();
    }
    expect((await json('inspect', '17')).job).toBe('waiting');
    expect((await json('inspect', '017')).job).toBe('waiting');
    expect((await json('inspect', '1')).job).toBe('delayed');
    expect((await json('inspect', '2')).job).toBe('absent');
  });

  it('fits one screen: the newest attempts in text, all of them in JSON', async () => {
    const start = Date.now() - 3_600_000;
    await database.db('delivery_log').insert(
      Array.from({ length: 30 }, (_, i) => ({
        order_id: 1,
        attempt: i + 1,
        started_at: new Date(start + i * 1000),
        duration_ms: 5,
        http_status: 500,
        error: `HTTP 500: ${'x'.repeat(500)}`,
        outcome: i === 29 ? 'failed' : 'retry',
        worker: 'w',
        superseded: i === 3,
      })),
    );
    const inspection = await json('inspect', '1');
    expect(inspection.attempts).toHaveLength(30);
    expect(inspection.attempts[3].superseded).toBe(true);
    const { stdout } = await cli('inspect', '1');
    expect(stdout).toMatch(/delivery log \(30 attempts\)\n\s+… 10 earlier attempt\(s\) not shown/);
    expect(stdout.match(/^\s+#\d+ /gm)).toHaveLength(20);
    expect(stdout).toMatch(/#30 .*failed/);
    expect(stdout).not.toMatch(/^\s+#10 /m);
    expect(Math.max(...stdout.split('\n').map((l) => l.length))).toBeLessThan(300);
  });

  it.each([
    ['12345', /no order with id 12345/, 1],
    ['abc', /order id must be a number/, 2],
    ['99999999999999999999', /order id must be a number from 0 to 9223372036854775807/, 2],
  ])('inspect %s is a one-line error (a missing order exits 1, a malformed id 2)', async (id, message, code) => {
    const result = await cli('inspect', id);
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('stats', () => {
  const log = (orderId: number, outcome: string, agoMs = 0, superseded = false) => ({
    order_id: orderId,
    attempt: 1,
    started_at: new Date(Date.now() - agoMs),
    duration_ms: 5,
    outcome,
    worker: 'w',
    superseded,
  });

  it('flags a host that answers 410 Gone', async () => {
    await database.db('orders').where({ id: 11 }).update({ last_error: 'HTTP 410: endpoint deleted' });
    await logFailures([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const stats = await json('stats');
    expect(stats.topFailingHosts).toContainEqual({ host: 'partner-b.example', failures: 5, gone: true });
    expect((await cli('stats')).stdout).toMatch(/5\s+partner-b\.example\s+\(answers 410 Gone/);
  });

  it('adds recent outcomes, the top failing hosts and the hosts retried in the window', async () => {
    await logFailures([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    await database.db('delivery_log').insert([
      log(16, 'delivered'),
      log(1, 'retry'),
      log(2, 'retry', 60_000),
      log(11, 'retry'),
      log(1, 'failed'),
      log(2, 'failed', 3_600_000), // outside the window
      log(3, 'retry', 3_600_000), // outside the window
      log(12, 'retry', 0, true), // superseded: its result never applied
    ]);
    const stats = await json('stats', '--minutes', '10');
    expect(stats.recent).toEqual({ windowMinutes: 10, delivered: 1, retried: 3, failed: 1 });
    expect(stats.topFailingHosts).toEqual([
      { host: 'partner-a.example', failures: 10, gone: false },
      { host: 'partner-b.example', failures: 5, gone: false },
    ]);
    expect(stats.retryingHosts).toEqual([
      { host: 'partner-a.example', retries: 2 },
      { host: 'partner-b.example', retries: 1 },
    ]);
    // The keys other tests and tools rely on are still there.
    expect(stats.orders).toEqual({ ready: 1, readyAtLeast: false, delivered: 1, failed: 15, other: 0 });
    expect(stats.oldestReadyAgeSeconds).toEqual(expect.any(Number));
    expect(stats.queue).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0 });

    expect((await json('stats', '--minutes', '120')).recent).toEqual({ windowMinutes: 120, delivered: 1, retried: 4, failed: 2 });
    expect((await json('stats', '--minutes', '240')).recent).toMatchObject({ failed: 17 });
    const text = (await cli('stats', '--minutes', '10')).stdout;
    expect(text).toMatch(/last 10 minutes\n\s+delivered\s+1\n\s+retried\s+3\n\s+failed\s+1\n/);
    expect(text).toMatch(/hosts retried in the last 10 minutes\n\s+2\s+partner-a\.example\n\s+1\s+partner-b\.example/);
  });

  it('counts the orders at 5 whose last attempt comes within the hour, by the retry policy in force', async () => {
    // 17 is ready with no attempt; 18-21 have had 7 of the default schedule's 8 attempts.
    await insertOrders(database.db, [18, 19, 20, 21], 'https://partner-a.example/cb', {}, 5);
    await database.db('orders').whereIn('id', [18, 19, 20, 21]).update({ attempts: 7 });
    await database.db.raw("UPDATE orders SET next_attempt_at = now() + interval '30 minutes' WHERE id = 19");
    await database.db.raw("UPDATE orders SET next_attempt_at = now() + interval '2 hours' WHERE id = 20");
    await database.db.raw("UPDATE orders SET lease_until = now() + interval '3 hours' WHERE id = 21");
    expect(await json('stats')).toMatchObject({ lastAttemptWithinHour: 2, lastAttemptWithinHourAtLeast: false }); // 18 (due now) and 19
    expect((await cli('stats')).stdout).toMatch(/last try < 1h\s+2\n/);
    // Under exponential backoff with 10 attempts, none of them is on its last.
    const exponential = await runCli(['stats', '--json'], { ...env(), MAX_ATTEMPTS: '10' });
    expect(JSON.parse(exponential.stdout).lastAttemptWithinHour).toBe(0);
  });

  it.each([['0'], ['-5'], ['abc'], ['99999999999']])('--minutes %s is a one-line error, exit 2 (usage)', async (minutes) => {
    const result = await cli('stats', '--minutes', minutes);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^order-callbacks: --minutes: expected a whole number from 1 to 525600/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('queries shared with the status page', () => {
  it('deliveriesPerMinute: one row per minute, zero-filled, oldest first, delivered and failed-for-good only', async () => {
    const at = (agoMs: number) => new Date(Date.now() - agoMs);
    await database.db('delivery_log').insert([
      ...[1, 2].map((id) => ({
        order_id: id,
        attempt: 1,
        started_at: at(5 * 60_000),
        duration_ms: 5,
        outcome: 'delivered',
        worker: 'w',
      })),
      { order_id: 3, attempt: 1, started_at: at(5 * 60_000), duration_ms: 5, outcome: 'failed', worker: 'w' },
      { order_id: 4, attempt: 1, started_at: at(30 * 60_000), duration_ms: 5, outcome: 'delivered', worker: 'w' },
      { order_id: 5, attempt: 1, started_at: at(0), duration_ms: 5, outcome: 'retry', worker: 'w' },
      { order_id: 6, attempt: 1, started_at: at(0), duration_ms: 5, outcome: 'delivered', worker: 'w', superseded: true },
      { order_id: 7, attempt: 1, started_at: at(2 * 3_600_000), duration_ms: 5, outcome: 'delivered', worker: 'w' },
    ]);
    const rows = await deliveriesPerMinute(database.db);
    expect(rows).toHaveLength(60);
    const starts = rows.map((r) => Date.parse(r.minute));
    expect(rows.every((r) => new Date(Date.parse(r.minute)).toISOString() === r.minute)).toBe(true);
    expect(starts.every((t, i) => t % 60_000 === 0 && (i === 0 || t - starts[i - 1] === 60_000))).toBe(true);
    expect(Date.now() - starts[59]).toBeLessThan(120_000);

    const bucketOf = (agoMs: number) =>
      rows.find((r) => Date.parse(r.minute) <= Date.now() - agoMs && Date.now() - agoMs < Date.parse(r.minute) + 60_000);
    // The rows were inserted a moment ago: compare with the minute they fell in, allowing for a minute boundary since.
    const fiveAgo = rows.filter((r) => r.delivered === 2 && r.failed === 1);
    expect(fiveAgo).toHaveLength(1);
    expect(Math.abs(Date.parse(fiveAgo[0].minute) - Date.parse(bucketOf(5 * 60_000)!.minute))).toBeLessThanOrEqual(60_000);
    expect(rows.reduce((sum, r) => sum + r.delivered, 0)).toBe(3);
    expect(rows.reduce((sum, r) => sum + r.failed, 0)).toBe(1);
    expect(rows.filter((r) => r.delivered === 0 && r.failed === 0)).toHaveLength(58);
    expect(await deliveriesPerMinute(database.db, 5)).toHaveLength(5);
  });

  it('findRecentFailures: the orders that ended 7 most recently within a day, with error and host, newest first', async () => {
    await database.db('orders').insert({ id: 18, status: 7, callback_url: 'not a url', payload: '{}', last_error: 'invalid URL' });
    for (let id = 1; id <= 15; id++) await setUpdatedAt([id], new Date(Date.UTC(2026, 0, 1, 0, id)));
    await setUpdatedAt([18], new Date(Date.UTC(2026, 0, 1, 1)));
    // Failed in the order of their ids, 18 last; 16 failed on an attempt superseded, 17 two days ago.
    for (let id = 1; id <= 15; id++) await logFailures([id], (100 - id) * 60_000);
    await logFailures([18], 60_000);
    await database.db('orders').whereIn('id', [16, 17]).update({ status: 7 });
    await database
      .db('delivery_log')
      .insert({ order_id: 16, attempt: 1, started_at: new Date(), duration_ms: 5, outcome: 'failed', worker: 'w', superseded: true });
    await logFailures([17], 48 * 3_600_000);
    expect(await findRecentFailures(database.db, 3)).toEqual([
      { orderId: '18', failedAt: '2026-01-01T01:00:00.000Z', error: 'invalid URL', host: null },
      { orderId: '15', failedAt: '2026-01-01T00:15:00.000Z', error: 'HTTP 404: no_such_order', host: 'partner-b.example' },
      { orderId: '14', failedAt: '2026-01-01T00:14:00.000Z', error: 'HTTP 404: no_such_order', host: 'partner-b.example' },
    ]);
    expect(await findRecentFailures(database.db)).toHaveLength(16);
  });

  it('findTopFailingHosts: hosts by orders that ended 7 within a day, most first, within the limit', async () => {
    await logFailures([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await logFailures([11, 12, 13, 14, 15], 25 * 3_600_000); // a day ago: not counted
    await logFailures([11, 12]);
    await logFailures([1, 2], 60_000); // a second attempt's failure is the same order
    expect(await findTopFailingHosts(database.db, 1)).toEqual([{ host: 'partner-a.example', failures: 10, gone: false }]);
    expect(await findTopFailingHosts(database.db)).toEqual([
      { host: 'partner-a.example', failures: 10, gone: false },
      { host: 'partner-b.example', failures: 2, gone: false },
    ]);
  });
});
