import { Queue } from 'bullmq';
import { redisConnection } from '../../src/queue/callback-queue';
import { createTestDatabase, getOrder, insertOrders, type TestDatabase } from '../helpers/database';
import { runCli } from '../helpers/cli';
import { startTestDaemon, stopAllDaemons } from '../helpers/daemons';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let queueName: string;

const cli = (...args: string[]) => runCli(args, { DATABASE_URL: database.url, REDIS_URL: SHARED_REDIS_URL, QUEUE_NAME: queueName });

const json = async (...args: string[]) => {
  const result = await cli(...args, '--json');
  expect(result).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(result.stdout);
};

const statusOf = async (...ids: number[]) => Promise.all(ids.map(async (id) => (await getOrder(database.db, id)).status));

beforeEach(async () => {
  database = await createTestDatabase();
  queueName = uniqueQueueName();
  // 1-10 failed with a 500 at partner-a, 11-15 failed with a 404 at partner-b, 16 delivered, 17 ready.
  await insertOrders(database.db, Array.from({ length: 10 }, (_, i) => i + 1), 'https://partner-a.example/cb', {}, 7);
  await insertOrders(database.db, [11, 12, 13, 14, 15], 'https://u:p@Partner-B.example:8443/x?token=t', {}, 7);
  await insertOrders(database.db, [16], 'https://partner-a.example/cb', {}, 6);
  await insertOrders(database.db, [17], 'https://partner-a.example/cb', {}, 5);
  await database.db('orders').whereBetween('id', [1, 10]).update({ last_error: 'HTTP 500: upstream down (gave up after 10 attempts)', attempts: 10 });
  await database.db('orders').whereBetween('id', [11, 15]).update({ last_error: 'HTTP 404: no_such_order', attempts: 1 });
});

afterEach(async () => {
  await stopAllDaemons();
  await database.drop();
  await obliterateQueue(queueName);
});

describe('requeue', () => {
  it('by id: moves the failed ones back to 5 with attempts reset, reports the rest, and audits the run', async () => {
    const report = await json('requeue', '--id', '1,2,16,17,999', '--actor', 'alice');
    expect(report).toMatchObject({ matched: 2, changed: 2, leftAlone: { ready: 1, delivered: 1 }, unknownIds: ['999'] });
    expect(await statusOf(1, 2, 3, 16, 17)).toEqual([5, 5, 7, 6, 5]);
    const order = await getOrder(database.db, 1);
    expect(order).toMatchObject({ attempts: 0, version: 1 });
    expect(order.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now() + 1000);

    const audit = await database.db('requeue_audit');
    expect(audit).toMatchObject([{ actor: 'alice', matched: 2, changed: 2, dry_run: false, resend_delivered: false, selector: { ids: ['1', '2', '16', '17', '999'] } }]);
  });

  it('running it twice changes nothing the second time', async () => {
    expect(await json('requeue', '--error-like', 'upstream down')).toMatchObject({ changed: 10 });
    const versions = await database.db('orders').orderBy('id').pluck('version');
    expect(await json('requeue', '--error-like', 'upstream down')).toMatchObject({ matched: 0, changed: 0 });
    expect(await database.db('orders').orderBy('id').pluck('version')).toEqual(versions);
  });

  it('--dry-run prints what would change and changes nothing, but is audited', async () => {
    const report = await json('requeue', '--callback-host', 'partner-b.example', '--dry-run');
    expect(report).toMatchObject({ dryRun: true, matched: 5, changed: 0, sample: ['11', '12', '13', '14', '15'] });
    expect(await statusOf(11, 12, 13, 14, 15)).toEqual([7, 7, 7, 7, 7]);
    expect(await database.db('requeue_audit')).toMatchObject([{ dry_run: true, matched: 5, changed: 0 }]);
    const text = await cli('requeue', '--callback-host', 'partner-b.example', '--dry-run');
    expect(text.stdout).toMatch(/^dry run: 5 order\(s\) would be moved back to 5; nothing changed\n\s+ids: 11, 12, 13, 14, 15/);
  });

  it('selects by host (ignoring userinfo, port and case), by error text taken literally, by time, and within --limit', async () => {
    expect(await json('requeue', '--error-like', 'no_such', '--limit', '2')).toMatchObject({ matched: 2, changed: 2, sample: ['11', '12'] });
    expect(await json('requeue', '--error-like', 'no%such')).toMatchObject({ matched: 0 }); // % is not a wildcard
    // Failed long ago: the trigger stamps updated_at on every update, so step around it for the setup.
    await database.db.transaction(async (tx) => {
      await tx.raw('SET LOCAL session_replication_role = replica');
      await tx('orders').whereIn('id', [3, 4]).update({ updated_at: new Date('2020-01-01T00:00:00Z') });
    });
    expect(await json('requeue', '--since', '2019-12-31T00:00:00Z', '--until', '2020-01-02')).toMatchObject({ changed: 2, sample: ['3', '4'] });
    expect(await json('requeue', '--callback-host', 'PARTNER-B.example')).toMatchObject({ changed: 3, sample: ['13', '14', '15'] });
  });

  it('works in batches over a large selection', async () => {
    await insertOrders(database.db, Array.from({ length: 1200 }, (_, i) => 10_000 + i), 'https://partner-c.example/', {}, 7);
    const report = await json('requeue', '--callback-host', 'partner-c.example', '--batch-size', '100');
    expect(report).toMatchObject({ matched: 1200, changed: 1200 });
    expect(Number((await database.db('orders').where({ status: 5 }).count('* as n'))[0].n)).toBe(1201);
  });

  it('--resend-delivered moves a delivered order back too, and the daemon sends it again with the same webhook-id', async () => {
    const receiver = await new Receiver(() => ({ status: 200 })).start();
    try {
      await database.db('orders').where({ id: 16 }).update({ callback_url: receiver.url() });
      await database.db('orders').where({ id: 1 }).update({ callback_url: receiver.url() });
      await startTestDaemon('start', { DATABASE_URL: database.url, REDIS_URL: SHARED_REDIS_URL, QUEUE_NAME: queueName, CALLBACK_ALLOW_PRIVATE: 'true', POLL_INTERVAL_MS: '3600000' });
      expect(await json('requeue', '--id', '1,16', '--resend-delivered')).toMatchObject({ changed: 2, leftAlone: { delivered: 0 } });
      // Woken by the requeue's NOTIFY: the poll interval is an hour.
      await waitFor('both delivered', async () => (await statusOf(1, 16)).every((s) => s === 6), 15_000);
      expect(receiver.requests.map((r) => r.webhookId).sort()).toEqual(['order-1', 'order-16']);
      expect(await database.db('requeue_audit').pluck('resend_delivered')).toEqual([true]);
    } finally {
      await receiver.stop();
    }
  });

  it.each([
    [[], /say which orders/],
    [['--id', '1,x'], /--id: expected order ids/],
    [['--since', 'yesterday'], /--since: expected an ISO timestamp/],
    [['--since', '2026-02-01', '--until', '2026-01-01'], /--since is after --until/],
    [['--all', '--limit', '-3'], /--limit: expected a positive whole number/],
    [['--id', '1', '--status', '6'], /--status: only 7/],
    [['--all', '--id', '1'], /--all cannot be combined/],
  ])('refuses %j with one line and exit 1', async (args, message) => {
    const result = await cli('requeue', ...args);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(await database.db('requeue_audit')).toHaveLength(0);
  });
});

describe('inspect', () => {
  it('shows the row with a redacted URL, every attempt, and where the job is', async () => {
    await database.db('delivery_log').insert([
      { order_id: 11, attempt: 1, started_at: new Date(), duration_ms: 12, http_status: 404, error: 'HTTP 404: no_such_order', outcome: 'failed', worker: 'host:1' },
    ]);
    const inspection = await json('inspect', '11');
    expect(inspection.order).toMatchObject({ id: '11', status: 7, status_name: 'failed', last_error: 'HTTP 404: no_such_order' });
    expect(inspection.order.callback_url).not.toMatch(/u:p@|token=t/);
    expect(inspection.attempts).toMatchObject([{ attempt: 1, http_status: 404, outcome: 'failed', worker: 'host:1' }]);
    expect(inspection.job).toBe('absent');

    const queue = new Queue(queueName, { connection: redisConnection(SHARED_REDIS_URL) });
    await queue.add('callback', { orderId: '17' }, { jobId: 'order-17' });
    await queue.close();
    expect((await json('inspect', '17')).job).toBe('waiting');
    const text = await cli('inspect', '11');
    expect(text.stdout).toMatch(/^order 11: failed \(status 7, version 0\)/);
    expect(text.stdout).toMatch(/#1 .* 12 ms\s+failed\s+HTTP 404\s+\[host:1\]/);
  });

  it.each([
    ['12345', /no order with id 12345/],
    ['abc', /order id must be a number/],
  ])('inspect %s is a one-line error, exit 1', async (id, message) => {
    const result = await cli('inspect', id);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('stats', () => {
  it('flags a host that answers 410 Gone', async () => {
    await database.db('orders').where({ id: 11 }).update({ last_error: 'HTTP 410: endpoint deleted' });
    const stats = await json('stats');
    expect(stats.topFailingHosts).toContainEqual({ host: 'partner-b.example', failures: 5, gone: true });
    expect((await cli('stats')).stdout).toMatch(/5\s+partner-b\.example\s+\(answers 410 Gone/);
  });

  it('adds recent outcomes and the top failing hosts', async () => {
    await database.db('delivery_log').insert([
      { order_id: 16, attempt: 1, started_at: new Date(), duration_ms: 5, http_status: 200, outcome: 'delivered', worker: 'w' },
      { order_id: 1, attempt: 9, started_at: new Date(), duration_ms: 5, http_status: 500, outcome: 'retry', worker: 'w' },
      { order_id: 1, attempt: 10, started_at: new Date(), duration_ms: 5, http_status: 500, outcome: 'failed', worker: 'w' },
      { order_id: 2, attempt: 1, started_at: new Date(Date.now() - 3_600_000), duration_ms: 5, outcome: 'failed', worker: 'w' },
    ]);
    const stats = await json('stats', '--minutes', '10');
    expect(stats.recent).toEqual({ windowMinutes: 10, delivered: 1, retried: 1, failed: 1 });
    expect(stats.topFailingHosts).toEqual([
      { host: 'partner-a.example', failures: 10, gone: false },
      { host: 'partner-b.example', failures: 5, gone: false },
    ]);
    expect(stats.orders).toEqual({ ready: 1, delivered: 1, failed: 15, other: 0 });
  });
});
