// delivery_log keeps DELIVERY_LOG_RETENTION_DAYS of attempts: older rows go in small batches, by one
// replica at a time, without holding back the workers' inserts.
import { randomUUID } from 'node:crypto';

import { Client } from 'pg';

import { deleteOldDeliveryLog, takeMaintenanceTurn } from '../../src/db/maintenance';
import { RETENTION_TURN, runDeliveryLogRetention } from '../../src/maintenance/delivery-log-retention';
import { daemonEnv, startTestDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, type TestDatabase } from '../helpers/database';
import { obliterateQueue, uniqueQueueName } from '../helpers/queue';
import { waitFor } from '../helpers/wait-for';

const OLD = 2500;
const RECENT = 500;

let database: TestDatabase;

beforeEach(async () => {
  database = await createTestDatabase();
  // Old attempts (orders 1-2500) from 31 days to about 8 months ago, the higher the id the older; recent
  // ones (orders 2501-3000) from now to 21 days ago.
  await database.db.raw(`
    INSERT INTO delivery_log (order_id, attempt, started_at, duration_ms, outcome, worker)
    SELECT g, 1, now() - interval '31 days 30 minutes' - g * interval '2 hours', 5, 'delivered', 'w' FROM generate_series(1, ${OLD}) g
    UNION ALL
    SELECT ${OLD} + g, 1, now() - (g - 1) * interval '1 hour', 5, 'delivered', 'w' FROM generate_series(1, ${RECENT}) g`);
});

afterEach(async () => {
  await stopAllDaemons();
  await database.drop();
});

async function logAges(): Promise<{ old: number; recent: number }> {
  const { rows } = await database.db.raw(
    "SELECT count(*) FILTER (WHERE started_at < now() - interval '30 days')::int AS old, count(*) FILTER (WHERE started_at >= now() - interval '30 days')::int AS recent FROM delivery_log",
  );
  return rows[0];
}

it('a daemon keeps DELIVERY_LOG_RETENTION_DAYS (30 by default) of delivery_log', async () => {
  const queueName = uniqueQueueName();
  try {
    const daemon = await startTestDaemon('producer', daemonEnv(database.url, queueName));
    const logged = await waitFor(
      'the deletion logged',
      () => daemon.logs.lines.find((line) => line.msg === 'deleted delivery_log rows past the retention'),
      20_000,
      200,
    );
    expect(logged).toMatchObject({ deleted: OLD, outcome: 'caughtUp', retentionDays: 30 });
    expect(await logAges()).toEqual({ old: 0, recent: RECENT });
  } finally {
    await stopAllDaemons();
    await obliterateQueue(queueName);
  }
});

it('one statement deletes at most its batch, the oldest first, and nothing recent', async () => {
  const turn = { name: RETENTION_TURN, token: randomUUID() };
  expect(await takeMaintenanceTurn(database.db, turn, 'test:1', 60_000, 60_000)).toBe(true);
  expect(await deleteOldDeliveryLog(database.db, turn, 30, 1000)).toBe(1000);
  expect(await logAges()).toEqual({ old: OLD - 1000, recent: RECENT });
  // The oldest went: orders 1501-2500 had the oldest attempts.
  const { rows } = await database.db.raw(
    'SELECT min(order_id)::int AS lo, max(order_id)::int AS hi FROM delivery_log WHERE order_id <= ?',
    [OLD],
  );
  expect(rows[0]).toEqual({ lo: 1, hi: OLD - 1000 });
});

it('a run deletes everything past the retention in batches and keeps the rest; another replica meanwhile does nothing', async () => {
  const [first, second] = await Promise.all([
    runDeliveryLogRetention({ db: database.db, holder: 'a:1', days: 30, batchSize: 1000, pauseMs: 0 }),
    runDeliveryLogRetention({ db: database.db, holder: 'b:1', days: 30, batchSize: 1000, pauseMs: 0 }),
  ]);
  expect([first, second].map((run) => run.outcome).sort()).toEqual(['caughtUp', 'notOurTurn']);
  expect(first.deleted + second.deleted).toBe(OLD);
  expect(await logAges()).toEqual({ old: 0, recent: RECENT });
  // Within the interval the turn is not taken again.
  expect((await runDeliveryLogRetention({ db: database.db, holder: 'b:1', days: 30 })).outcome).toBe('notOurTurn');
});

it('a run that stops with rows left (its batches spent) makes the next turn due at once, not a minute later', async () => {
  // 100 batches of 10 are 1,000 of the 2,500 old rows.
  const first = await runDeliveryLogRetention({ db: database.db, holder: 'a:1', days: 30, batchSize: 10, pauseMs: 0 });
  expect(first).toEqual({ outcome: 'moreLeft', deleted: 1000 });
  const second = await runDeliveryLogRetention({ db: database.db, holder: 'b:1', days: 30, batchSize: 10, pauseMs: 0 });
  expect(second).toEqual({ outcome: 'moreLeft', deleted: 1000 });
  const third = await runDeliveryLogRetention({ db: database.db, holder: 'a:1', days: 30, batchSize: 1000, pauseMs: 0 });
  expect(third).toEqual({ outcome: 'caughtUp', deleted: OLD - 2000 });
  // Caught up, the turn waits for its interval again.
  expect((await runDeliveryLogRetention({ db: database.db, holder: 'b:1', days: 30 })).outcome).toBe('notOurTurn');
});

it('a longer retention keeps more', async () => {
  // Older than 100 days: 31 days 30 minutes + g × 2 hours > 100 days from g = 828 on.
  expect(await runDeliveryLogRetention({ db: database.db, holder: 'a:1', days: 100, batchSize: 1000, pauseMs: 0 })).toEqual({
    outcome: 'caughtUp',
    deleted: OLD - 827,
  });
});

it('a replica that lost its turn deletes nothing', async () => {
  const turn = { name: RETENTION_TURN, token: randomUUID() };
  expect(await takeMaintenanceTurn(database.db, turn, 'frozen:1', 60_000, 60_000)).toBe(true);
  await database.db.raw("UPDATE maintenance_turns SET held_until = now() - interval '1 millisecond', token = ?", [randomUUID()]);
  expect(await deleteOldDeliveryLog(database.db, turn, 30, 1000)).toBe(0);
  expect(await logAges()).toEqual({ old: OLD, recent: RECENT });
});

it('a batch holds no lock that stops the workers from logging attempts or anyone from reading', async () => {
  const worker = new Client({ connectionString: database.url });
  await worker.connect();
  try {
    await worker.query("SET lock_timeout = '1s'");
    const turn = { name: RETENTION_TURN, token: randomUUID() };
    expect(await takeMaintenanceTurn(database.db, turn, 'test:1', 60_000, 60_000)).toBe(true);
    // A batch whose transaction stays open: as long as a batch can ever hold its locks.
    await database.db.transaction(async (trx) => {
      expect(await deleteOldDeliveryLog(trx, turn, 30, 1000)).toBe(1000);
      const { rows: locks } = await trx.raw(
        "SELECT DISTINCT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = 'delivery_log'::regclass",
      );
      // The locks of an ordinary read and write: neither conflicts with an insert (SHARE and stronger would).
      expect(locks.map((l: { mode: string }) => l.mode).sort()).toEqual(['AccessShareLock', 'RowExclusiveLock']);
      await worker.query(
        "INSERT INTO delivery_log (order_id, attempt, started_at, duration_ms, outcome, worker) VALUES (1, 2, now(), 5, 'retry', 'w')",
      );
      const read = await worker.query('SELECT count(*)::int AS n FROM delivery_log');
      expect(read.rows[0].n).toBe(OLD + RECENT + 1);
    });
  } finally {
    await worker.end();
  }
  expect(await logAges()).toEqual({ old: OLD - 1000, recent: RECENT + 1 });
});
