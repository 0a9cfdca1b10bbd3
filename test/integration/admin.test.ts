// requeue, end to end: through the CLI, the batches called directly, and a running daemon that delivers again.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

import { requeue } from '../../src/admin/requeue';
import { requeueOrders } from '../../src/db/requeue';
import { runCli } from '../helpers/cli';
import { daemonEnv, startTestDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, getOrder, insertOrders, type TestDatabase } from '../helpers/database';
import { obliterateQueue, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let queueName: string;

const env = () => daemonEnv(database.url, queueName);
const cli = (...args: string[]) => runCli(args, env());

const json = async (...args: string[]) => {
  const result = await cli(...args, '--json');
  expect(result).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(result.stdout);
};

const statusOf = async (...ids: number[]) => Promise.all(ids.map(async (id) => (await getOrder(database.db, id)).status));
const audits = () => database.db('requeue_audit').orderBy('id');

/** Sets updated_at (which the trigger stamps on every update) by stepping around the triggers for the setup. */
async function setUpdatedAt(ids: number[], at: Date): Promise<void> {
  await database.db.transaction(async (tx) => {
    await tx.raw('SET LOCAL session_replication_role = replica');
    await tx('orders').whereIn('id', ids).update({ updated_at: at });
  });
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
});

afterEach(async () => {
  await stopAllDaemons();
  await database.drop();
  await obliterateQueue(queueName);
});

describe('requeue', () => {
  it('by id: moves the failed ones back to 5 with attempts reset, reports the rest, and audits the run', async () => {
    const report = await json('requeue', '--id', '1,2,16,17,999', '--actor', 'alice');
    expect(report).toMatchObject({
      matched: 2,
      changed: 2,
      sample: ['1', '2'],
      leftAlone: { ready: 1, delivered: 1, failed: 0, other: 0 },
      unknownIds: ['999'],
    });
    expect(await statusOf(1, 2, 3, 16, 17)).toEqual([5, 5, 7, 6, 5]);
    const order = await getOrder(database.db, 1);
    // version bumped by the trigger; last_error kept until the next attempt replaces it.
    expect(order).toMatchObject({
      attempts: 0,
      version: 1,
      last_error: 'HTTP 500: upstream down (gave up after 10 attempts)',
      lease_until: null,
    });
    expect(order.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    expect(await getOrder(database.db, 16)).toMatchObject({ status: 6, version: 0 });

    expect(await audits()).toMatchObject([
      {
        actor: 'alice',
        matched: 2,
        changed: 2,
        dry_run: false,
        resend_delivered: false,
        selector: { ids: ['1', '2', '16', '17', '999'], statuses: [7] },
      },
    ]);
    expect(String((await audits())[0].id)).toBe(report.auditId);

    const text = await cli('requeue', '--id', '3,16,17,998');
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(/^requeued 1 of 1 matching order\(s\)\n\s+ids: 3\n/);
    expect(text.stdout).toMatch(/\n\s+1 already ready, 1 already delivered: left alone/);
    expect(text.stdout).toMatch(/\n\s+1 unknown id\(s\): 998\n/);
    expect((await audits())[1].actor).toMatch(/\S/); // the OS user
  });

  it('running it twice changes nothing the second time', async () => {
    expect(await json('requeue', '--error-like', 'upstream down')).toMatchObject({ changed: 10 });
    const versions = await database.db('orders').orderBy('id').pluck('version');
    expect(await json('requeue', '--error-like', 'upstream down')).toMatchObject({ matched: 0, changed: 0, leftAlone: { ready: 10 } });
    expect(await database.db('orders').orderBy('id').pluck('version')).toEqual(versions);
    expect(await audits()).toMatchObject([
      { matched: 10, changed: 10 },
      { matched: 0, changed: 0 },
    ]);
  });

  it('--dry-run prints what would change and changes nothing, but is audited', async () => {
    const report = await json('requeue', '--callback-host', 'partner-b.example', '--dry-run');
    expect(report).toMatchObject({ dryRun: true, matched: 5, changed: 0, sample: ['11', '12', '13', '14', '15'] });
    expect(await statusOf(11, 12, 13, 14, 15)).toEqual([7, 7, 7, 7, 7]);
    expect(await database.db('orders').whereBetween('id', [11, 15]).pluck('version')).toEqual([0, 0, 0, 0, 0]);
    expect(await audits()).toMatchObject([{ dry_run: true, matched: 5, changed: 0 }]);
    const text = await cli('requeue', '--callback-host', 'partner-b.example', '--dry-run');
    expect(text.stdout).toMatch(/^dry run: 5 order\(s\) would be moved back to 5; nothing changed\n\s+ids: 11, 12, 13, 14, 15\n/);
    expect(await statusOf(11, 12, 13, 14, 15)).toEqual([7, 7, 7, 7, 7]);
  });

  it('selects by host (ignoring userinfo, port and case), by error text taken literally, by time, and within --limit', async () => {
    expect(await json('requeue', '--error-like', 'NO_SUCH', '--limit', '2')).toMatchObject({
      matched: 2,
      changed: 2,
      sample: ['11', '12'],
    });
    expect(await statusOf(11, 12, 13)).toEqual([5, 5, 7]);
    expect(await json('requeue', '--error-like', 'no%such')).toMatchObject({ matched: 0 }); // % is not a wildcard
    expect(await json('requeue', '--error-like', 'no_such_order_')).toMatchObject({ matched: 0 }); // nor is _

    await setUpdatedAt([3, 4], new Date('2020-01-01T00:00:00Z'));
    await setUpdatedAt([5], new Date('2020-01-03T00:00:00Z'));
    expect(await json('requeue', '--since', '2019-12-31T00:00:00Z', '--until', '2020-01-02')).toMatchObject({
      changed: 2,
      sample: ['3', '4'],
    });
    expect(await json('requeue', '--until', '2020-01-03T01:00+01:00')).toMatchObject({ changed: 1, sample: ['5'] });
    expect(await json('requeue', '--callback-host', 'PARTNER-B.example')).toMatchObject({ changed: 3, sample: ['13', '14', '15'] });
    expect(await statusOf(1, 2, 6, 7, 8, 9, 10)).toEqual([7, 7, 7, 7, 7, 7, 7]);
  });

  it('--all moves every failed order, and only those', async () => {
    expect(await json('requeue', '--all', '--actor', 'ops, INC-1')).toMatchObject({
      matched: 15,
      changed: 15,
      leftAlone: { ready: 1, delivered: 1 },
    });
    expect(Number((await database.db('orders').where({ status: 5 }).count('* as n'))[0].n)).toBe(16);
    expect(await statusOf(16)).toEqual([6]);
    expect(await audits()).toMatchObject([{ actor: 'ops, INC-1', selector: { all: true, statuses: [7] }, changed: 15 }]);
  });

  it('--status 6 --resend-delivered moves only delivered orders; the failed ones are reported as left alone', async () => {
    expect(await json('requeue', '--id', '1,16,17', '--status', '6', '--resend-delivered')).toMatchObject({
      matched: 1,
      changed: 1,
      sample: ['16'],
      leftAlone: { ready: 1, delivered: 0, failed: 1 },
    });
    expect(await statusOf(1, 16, 17)).toEqual([7, 5, 5]);
    expect(await audits()).toMatchObject([{ resend_delivered: true, selector: { statuses: [6] } }]);
  });

  it('works in batches, one transaction each, and the audit counts them all', async () => {
    await insertOrders(
      database.db,
      Array.from({ length: 1200 }, (_, i) => 10_000 + i),
      'https://partner-c.example/',
      {},
      7,
    );
    const report = await json('requeue', '--callback-host', 'partner-c.example', '--batch-size', '100');
    expect(report).toMatchObject({ matched: 1200, changed: 1200, changedMeanwhile: 0 });
    expect(Number((await database.db('orders').where({ status: 5 }).count('* as n'))[0].n)).toBe(1201);
    expect(await audits()).toMatchObject([{ matched: 1200, changed: 1200, dry_run: false }]);

    // The batches themselves, called directly: keyset pages of the batch size, the last one partial.
    await database.db('orders').where('id', '>=', 10_000).update({ status: 7 });
    const batches: number[] = [];
    const direct = await requeue(database.db, {
      selector: { callbackHost: 'partner-c.example', limit: 1150 },
      statuses: [7],
      actor: 'test',
      dryRun: false,
      batchSize: 500,
      onBatch: ({ changed }) => batches.push(changed),
    });
    expect(batches).toEqual([500, 500, 150]);
    expect(direct).toMatchObject({ matched: 1150, changed: 1150 });
    expect(Number((await database.db('orders').where('id', '>=', 10_000).where({ status: 7 }).count('* as n'))[0].n)).toBe(50);
    expect((await audits())[1]).toMatchObject({ matched: 1150, changed: 1150 });
  });

  it("each batch's update is conditional: it changes only what is still at a requeued status, and says which", async () => {
    expect(await requeueOrders(database.db, ['1', '2', '16', '17', '999'], [7])).toEqual(['1', '2']);
    expect(await requeueOrders(database.db, ['1', '2', '16', '17', '999'], [7])).toEqual([]);
    expect(await statusOf(1, 2, 16, 17)).toEqual([5, 5, 6, 5]);
    expect((await getOrder(database.db, 1)).version).toBe(1);
  });

  it('a requeued order is delivered again by a running daemon, with the same webhook-id; --resend-delivered sends a delivered one again', async () => {
    // Order 102's partner refuses it once (400: failed for good at once), then accepts.
    const receiver = await new Receiver((req, n) => ({ status: req.webhookId === 'order-102' && n === 1 ? 400 : 200 })).start();
    try {
      // The poll interval is an hour: only the NOTIFYs of the inserts and of the requeue wake the producer.
      await startTestDaemon('start', { ...env(), CALLBACK_ALLOW_PRIVATE: 'true', POLL_INTERVAL_MS: '3600000' });
      await insertOrders(database.db, [101, 102], receiver.url(), { item: 'book' }, 5);
      await waitFor('101 delivered and 102 failed', async () => (await statusOf(101, 102)).join() === '6,7', 15_000);
      expect(receiver.requests).toHaveLength(2);

      expect(await json('requeue', '--id', '101,102', '--resend-delivered')).toMatchObject({ changed: 2, leftAlone: { delivered: 0 } });
      await waitFor('both delivered again', async () => (await statusOf(101, 102)).every((s) => s === 6), 15_000);
      await waitFor('four requests', () => receiver.requests.length === 4, 5_000);

      // Every request for an order carries that order's one webhook-id, before and after the requeue.
      const idsByOrder = new Map<string, Set<string>>();
      for (const r of receiver.requests) {
        const { orderId } = JSON.parse(r.body) as { orderId: string };
        idsByOrder.set(orderId, (idsByOrder.get(orderId) ?? new Set()).add(r.webhookId));
      }
      expect(Object.fromEntries([...idsByOrder].map(([k, v]) => [k, [...v]]))).toEqual({ '101': ['order-101'], '102': ['order-102'] });

      expect(await getOrder(database.db, 102)).toMatchObject({ status: 6, attempts: 1, last_error: null });
      expect(await database.db('delivery_log').where({ order_id: 102 }).orderBy('id').pluck('outcome')).toEqual(['failed', 'delivered']);
      expect(await audits()).toMatchObject([{ resend_delivered: true, changed: 2 }]);

      // inspect after delivery: the row, both attempts, and no job left in the queue.
      const inspection = await json('inspect', '101');
      expect(inspection.order).toMatchObject({ id: '101', status: 6, status_name: 'delivered', version: 3 });
      expect(inspection.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['delivered', 'delivered']);
      expect(inspection.attempts[0]).toMatchObject({ attempt: 1, http_status: 200, worker: 'test-worker', superseded: false });
      expect(inspection.job).toBe('absent');
    } finally {
      await receiver.stop();
    }
  });

  it('npm run requeue -- <selectors> runs the command', async () => {
    const root = path.join(__dirname, '..', '..');
    const { stdout } = await promisify(execFile)('npm', ['run', '--silent', 'requeue', '--', '--id', '4', '--json'], {
      cwd: root,
      env: { ...process.env, ...env() },
      timeout: 30_000,
    });
    expect(JSON.parse(stdout)).toMatchObject({ changed: 1, sample: ['4'] });
    expect(await statusOf(4)).toEqual([5]);
  });

  it.each([
    [[], /say which orders/],
    [['--id', '1,x'], /--id: expected order ids like 1,2,3; "x" is not one/],
    [['--id', '99999999999999999999'], /--id: /],
    [['--since', 'yesterday'], /--since: expected an ISO timestamp/],
    [['--until', '2026-02-30'], /--until: expected an ISO timestamp/],
    [['--since', '2026-02-01', '--until', '2026-01-01'], /--since is after --until/],
    [['--all', '--limit', '-3'], /--limit: expected a whole number/],
    [['--all', '--limit', '0'], /--limit: expected a whole number/],
    [['--all', '--batch-size', 'abc'], /--batch-size: expected a whole number/],
    [['--callback-host', 'partner-a.example:443'], /--callback-host: .*no scheme, port or path/],
    [['--id', '1', '--status', '6'], /--status 6: .*needs --resend-delivered/],
    [['--id', '1', '--status', '5'], /--status: only 7/],
    [['--all', '--id', '1'], /--all cannot be combined/],
    [['--all', '--actor', ' '], /--actor: /],
  ])('refuses %j with one line, exit 2 (usage), and no audit row', async (args, message) => {
    const result = await cli('requeue', ...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stdout).toBe('');
    expect(await audits()).toHaveLength(0);
    expect(await statusOf(1, 16)).toEqual([7, 6]);
  });
});
