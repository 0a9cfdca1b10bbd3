// What the order gauges (and stats' counts) cost on a table of years of orders: bounded by the ready
// backlog and fixed caps, never by the orders at 6 and 7. Measured as Postgres reports it (rows and
// buffers read under EXPLAIN (ANALYZE, BUFFERS)), not as a time.
import { Client } from 'pg';

import { countLastAttemptsDue, countOrders, LAST_ATTEMPTS_SCAN_CAP } from '../../src/db/reports/order-counts';
import { readOrderGauges } from '../../src/db/reports/order-gauges';
import { findRecentFailures, findTopFailingHosts } from '../../src/db/reports/recent-outcomes';
import { refreshOrderGauges } from '../../src/observability/refresh-order-gauges';
import { createTestDatabase, type TestDatabase } from '../helpers/database';

const ORDERS = 2_000_000;
/** Every 400th order is ready: 5,000, spread over the table and over three years. */
const READY_EVERY = 400;
const READY = ORDERS / READY_EVERY;
/** Catalog lookups and the like, on top of the rows a query is about. */
const SLACK_ROWS = 1000;

let database: TestDatabase;
let client: Client;
let tablePages: number;

beforeAll(async () => {
  database = await createTestDatabase();
  client = new Client({ connectionString: database.url });
  await client.connect();
  // Unlogged: the same pages and plans without writing 2 M rows to the WAL of a shared server.
  await client.query('ALTER TABLE orders SET UNLOGGED');
  // Mostly delivered (6), one in ten failed (7), a few at another status; the ready ones due, some on
  // their last attempt (7 of the default schedule's 8). Timestamps over three years, oldest first.
  await client.query(`
    INSERT INTO orders (id, status, callback_url, attempts, next_attempt_at, created_at, updated_at, ready_since)
    SELECT g,
           CASE WHEN g % ${READY_EVERY} = 0 THEN 5 WHEN g % 10 = 3 THEN 7 WHEN g % 1000 = 1 THEN 2 ELSE 6 END,
           CASE WHEN g % ${READY_EVERY} = 0 THEN 'https://partner-' || g % 50 || '.example/cb' END,
           (g / ${READY_EVERY}) % 8, t, t, t, t
      FROM generate_series(1, ${ORDERS}) g, LATERAL (SELECT now() - (${ORDERS} - g) * interval '47 seconds' AS t) at`);
  // What autovacuum does to a table this size: statistics for the planner, and the visibility map that
  // lets an index answer without the table.
  await client.query('VACUUM (ANALYZE) orders');
  tablePages = Number((await client.query("SELECT relpages FROM pg_class WHERE oid = 'orders'::regclass")).rows[0].relpages);
}, 300_000);

afterAll(async () => {
  await client?.end();
  await database?.drop();
});

interface Cost {
  sql: string;
  /** Rows the plan's scans produced or filtered out, over all their loops. */
  rowsRead: number;
  /** Shared buffers the statement touched (hit or read). */
  buffers: number;
}

/** The fields of a node of EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) that costOf reads. */
interface PlanNode {
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  'Shared Hit Blocks': number;
  'Shared Read Blocks': number;
  Plans?: PlanNode[];
}

/** Runs `sql` under EXPLAIN (ANALYZE, BUFFERS) and sums what its scans read. */
async function costOf(sql: string, bindings: unknown[] = []): Promise<Cost> {
  const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`, bindings);
  const plan = rows[0]['QUERY PLAN'][0].Plan as PlanNode;
  let rowsRead = 0;
  const walk = (node: PlanNode) => {
    // Scans of a table or an index (a subquery's scan reads rows already counted below it).
    if (node['Relation Name'] !== undefined) {
      const perLoop = node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0);
      rowsRead += perLoop * node['Actual Loops'];
    }
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan);
  if (process.env.SHOW_PLANS) console.log(JSON.stringify(plan, null, 1));
  return { sql, rowsRead, buffers: plan['Shared Hit Blocks'] + plan['Shared Read Blocks'] };
}

/**
 * The statements `run` sends, each SELECT measured on its own, replayed in one transaction (rolled
 * back) with the settings `run` made (SET LOCAL), so that each is planned as it was.
 */
async function costsOf(run: () => Promise<unknown>): Promise<Cost[]> {
  const sent: { sql: string; bindings: unknown[] }[] = [];
  const listener = (query: { sql: string; bindings?: unknown[] }) => sent.push({ sql: query.sql, bindings: query.bindings ?? [] });
  database.db.on('query', listener);
  try {
    await run();
  } finally {
    database.db.removeListener('query', listener);
  }
  const costs: Cost[] = [];
  await client.query('BEGIN');
  try {
    for (const { sql, bindings } of sent) {
      if (/^\s*select/i.test(sql)) costs.push(await costOf(sql, bindings));
      else if (/^\s*set /i.test(sql)) await client.query(sql, bindings);
    }
  } finally {
    await client.query('ROLLBACK');
  }
  return costs;
}

it('the table is years of orders: the bounds below are far under its size', async () => {
  const { rows } = await client.query('SELECT status, count(*)::int AS n FROM orders GROUP BY status ORDER BY status');
  expect(rows).toEqual([
    { status: 2, n: 2000 },
    { status: 5, n: READY },
    { status: 6, n: expect.any(Number) },
    { status: 7, n: expect.any(Number) },
  ]);
  // Rows read below are bounded by 1/300 of the orders; the counts' buffers by 1% of the table's pages.
  expect(ORDERS).toBeGreaterThan(300 * (READY + SLACK_ROWS));
  expect(tablePages).toBeGreaterThan(100 * 200);
});

it('counting orders reads the ready backlog through its indexes and the statistics, never the orders at 6 and 7', async () => {
  let counts: Awaited<ReturnType<typeof countOrders>> | undefined;
  const costs = await costsOf(async () => {
    counts = await countOrders(database.db);
  });
  for (const cost of costs) {
    expect({ sql: cost.sql, rowsRead: cost.rowsRead <= READY + SLACK_ROWS }).toEqual({ sql: cost.sql, rowsRead: true });
    // The ready orders' index entries, a few hundred pages at most: the table has tens of thousands.
    expect({ sql: cost.sql, buffers: cost.buffers <= 200 }).toEqual({ sql: cost.sql, buffers: true });
  }
  expect(costs.length).toBe(3);
  // The numbers: ready exact, the rest within the planner's sampling error.
  expect(counts).toMatchObject({ ready: READY, readyAtLeast: false });
  expect(counts!.oldestReadyAgeSeconds).toBeGreaterThan(3 * 365 * 86_400 * 0.9);
  expect(counts!.delivered).toBeGreaterThan(ORDERS * 0.85);
  expect(counts!.delivered).toBeLessThan(ORDERS * 0.92);
  expect(counts!.failed).toBeGreaterThan(ORDERS * 0.08);
  expect(counts!.failed).toBeLessThan(ORDERS * 0.12);
});

it('counting the orders on their last attempt reads at most LAST_ATTEMPTS_SCAN_CAP due orders', async () => {
  let due: Awaited<ReturnType<typeof countLastAttemptsDue>> | undefined;
  const costs = await costsOf(async () => {
    due = await countLastAttemptsDue(database.db, 8, 60);
  });
  expect(costs[0].rowsRead).toBeLessThanOrEqual(LAST_ATTEMPTS_SCAN_CAP);
  expect(costs[0].buffers).toBeLessThanOrEqual(LAST_ATTEMPTS_SCAN_CAP + 100);
  // Every ready order is due; one in eight of them has had 7 attempts.
  expect(due).toEqual({ count: LAST_ATTEMPTS_SCAN_CAP / 8, atLeast: true });
});

it('a scrape reads one row: the order gauges one replica computed', async () => {
  expect(await refreshOrderGauges(database.db, 'test:1')).toBe('refreshed');
  let stored: Awaited<ReturnType<typeof readOrderGauges>>;
  const costs = await costsOf(async () => {
    stored = await readOrderGauges(database.db);
  });
  expect(costs).toEqual([expect.objectContaining({ rowsRead: 1 })]);
  expect(costs[0].buffers).toBeLessThanOrEqual(3);
  expect(stored!).toMatchObject({ ready: READY, readyAtLeast: false, oldestReadyAgeSeconds: expect.any(Number) });
});

it('the failing hosts and recent failures read a day of failed attempts, not the orders at 7', async () => {
  // A million failed attempts over the last three weeks, 1,000 of them within the day; each ended its
  // order 7. (With a tenth of that, a scan of the whole log is as cheap, and the planner takes it.)
  await client.query('ALTER TABLE delivery_log SET UNLOGGED');
  await client.query(`
    INSERT INTO delivery_log (order_id, attempt, started_at, duration_ms, outcome, worker)
    SELECT (g % 199999) * 10 + 3, 8, now() - CASE WHEN g <= 1000 THEN g * interval '1 minute' ELSE interval '1 day' + g * interval '2 seconds' END, 5, 'failed', 'w'
      FROM generate_series(1, 1000000) g`);
  await client.query('ANALYZE delivery_log');
  for (const run of [() => findTopFailingHosts(database.db, 10), () => findRecentFailures(database.db, 20)]) {
    const costs = await costsOf(run);
    expect(costs.length).toBe(1);
    // The day's 1,000 log rows (counted twice when read by bitmap: in the index, then in the table) and
    // their 1,000 orders by primary key: not the million attempts, nor the 200,000 orders at 7.
    expect(costs[0].rowsRead).toBeLessThanOrEqual(3 * 1000 + SLACK_ROWS);
  }
  expect(await findRecentFailures(database.db, 1)).toEqual([expect.objectContaining({ orderId: '13' })]);
});

it('the measure catches the queries the gauges ran before: a count by status reads every order', async () => {
  const byStatus = await costOf('SELECT status, count(*) AS n FROM orders GROUP BY status');
  expect(byStatus.rowsRead).toBeGreaterThanOrEqual(ORDERS);
  expect(byStatus.buffers).toBeGreaterThanOrEqual(tablePages);
  const allDue = await costOf(
    `SELECT count(*) AS n FROM orders
      WHERE status = 5 AND GREATEST(next_attempt_at, lease_until) <= now() + $1 * interval '1 minute' AND attempts >= $2`,
    [60, 7],
  );
  expect(allDue.rowsRead).toBeGreaterThan(LAST_ATTEMPTS_SCAN_CAP);
  const allFailed = await costOf(
    "SELECT callback_host(callback_url) AS host, count(*) AS n, bool_or(last_error LIKE 'HTTP 410%') AS gone FROM orders WHERE status = 7 GROUP BY 1 ORDER BY n DESC, host LIMIT 10",
  );
  expect(allFailed.rowsRead).toBeGreaterThanOrEqual(ORDERS);
});
