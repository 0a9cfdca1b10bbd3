import { Client } from 'pg';

import { ROW_BUSY } from '../../src/db/batching/locked-batch';
import { CLAIM_ORDERS_SQL, type ClaimedOrder, claimOrders, QUEUE_LEASE_KEPT_WITHIN_MS } from '../../src/db/claim-order';
import { deferClaimedOrders, deferUnclaimedOrders } from '../../src/db/defer-orders';
import { positionalParameters } from '../../src/db/prepared-statement';
import { type AttemptOutcome, RECORD_ATTEMPTS_SQL, recordAttempts } from '../../src/db/record-attempt';
import { batchedOrderWrites } from '../../src/worker/batched-order-writes';
import { createTestDatabase, getOrder, insertOrders, type TestDatabase } from '../helpers/database';
import { sleep } from '../helpers/wait-for';

// The worker's two writes, batched across concurrent attempts: each order in a batch must come out
// exactly as it would alone, whatever its neighbours are.
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database.drop();
});

/** Another transaction (the order system, an admin) holding an order's row until release(). */
async function holdRow(id: number) {
  const client = new Client({ connectionString: database.url });
  await client.connect();
  await client.query('BEGIN');
  await client.query('SELECT 1 FROM orders WHERE id = $1 FOR UPDATE', [id]);
  return {
    release: async () => {
      await client.query('COMMIT');
      await client.end();
    },
  };
}

const attempt = (order: ClaimedOrder, outcome: AttemptOutcome) => ({
  order,
  outcome,
  startedAt: new Date(),
  durationMs: 7,
  httpStatus: outcome.kind === 'delivered' ? 200 : undefined,
  worker: 'test',
});

describe('how Postgres plans the per-order statements', () => {
  // Statistics taken while nothing was at 5, then thousands of orders through 5 to 6, as in a steady
  // trickle between two autovacuums: the partial indexes on status = 5 are full of dead entries. A plan
  // that scans such an index whole slows down with every order since the last vacuum; the statements
  // must look their orders up by primary key, whether Postgres plans them per call or once (prepared).
  it.each([
    ['claim', CLAIM_ORDERS_SQL, '(jsonb, int, int, int, int, int)', "('[]', 1000, 1000, 11000, 1000, 524288)"],
    ['record', RECORD_ATTEMPTS_SQL, '(jsonb)', "('[]')"],
  ])('%s finds its orders by primary key when statistics saw none at 5', async (_, sql, types, values) => {
    const stale = await createTestDatabase();
    const client = new Client({ connectionString: stale.url });
    await client.connect();
    try {
      await insertOrders(
        stale.db,
        Array.from({ length: 20_000 }, (_, i) => i + 1),
        'https://example.com/cb',
        { item: 'book' },
        1,
      );
      await client.query('ANALYZE orders');
      await client.query('UPDATE orders SET status = 5');
      await client.query("UPDATE orders SET lease_until = now() + interval '1 minute'");
      await client.query('UPDATE orders SET status = 6 WHERE id > 10');
      await client.query(`PREPARE statement${types} AS ${positionalParameters(sql)}`);
      for (const mode of ['force_custom_plan', 'force_generic_plan']) {
        await client.query(`SET plan_cache_mode = ${mode}`);
        const plan = (await client.query(`EXPLAIN EXECUTE statement${values}`)).rows.map((row) => row['QUERY PLAN']).join('\n');
        const scans = plan.split('\n').filter((line) => /Scan.* on orders /.test(line));
        expect(scans.length).toBeGreaterThan(0);
        for (const scan of scans) expect(`${mode}: ${scan}`).toMatch(/using orders_pkey on orders/);
      }
    } finally {
      await client.end();
      await stale.drop();
    }
  });
});

describe('claimOrders', () => {
  it('claims what is claimable and answers undefined, in place, for everything else', async () => {
    await insertOrders(database.db, [1, 2, 3, 4, 5], 'http://127.0.0.1:9/cb');
    await insertOrders(database.db, [6], 'http://127.0.0.1:9/cb', {}, 6);
    await database
      .db('orders')
      .where({ id: 2 })
      .update({ next_attempt_at: new Date(Date.now() + 3_600_000) });
    await database
      .db('orders')
      .where({ id: 3 })
      .update({ claim_token: '00000000-0000-4000-8000-000000000003', lease_until: new Date(Date.now() + 60_000) });

    const ids = ['1', '2', '3', '6', '404', 'abc', '007', '99999999999999999999', '4', '4', '5'];
    const claimed = await claimOrders(database.db, ids, 60_000, 262_144);

    expect(claimed.map((order) => order?.id)).toEqual([
      '1',
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      '4',
      undefined,
      '5',
    ]);
    const tokens = claimed.filter((order) => order).map((order) => order!.token);
    expect(new Set(tokens).size).toBe(3);
    for (const order of claimed.filter((o): o is ClaimedOrder => o !== undefined)) {
      const row = await getOrder(database.db, order.id);
      expect(row.claim_token).toBe(order.token);
      expect(order.attempts).toBe(0);
      expect(order.payload).toEqual({ item: 'book' });
    }
    // Not claimed: a claim held by someone else stays theirs (here one made before migration 006,
    // with its expiry in lease_until and no claim_until).
    expect((await getOrder(database.db, 3)).claim_token).toBe('00000000-0000-4000-8000-000000000003');
  });

  it('a claim leaves a queue lease that ends shortly after it as it is, so Postgres updates the row in place', async () => {
    await insertOrders(database.db, [1601], 'http://127.0.0.1:9/cb');
    const queueLease = new Date(Date.now() + 5_000 + QUEUE_LEASE_KEPT_WITHIN_MS / 2);
    await database.db('orders').where({ id: 1601 }).update({ lease_until: queueLease });

    const client = new Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      const params = [JSON.stringify([{ id: '1601' }]), 5_000, 5_000, 5_000 + QUEUE_LEASE_KEPT_WITHIN_MS, 5_000, 524_288];
      expect((await client.query(positionalParameters(CLAIM_ORDERS_SQL), params)).rows).toHaveLength(1);
      // This transaction's own counts: one update, made in place (HOT), so no index got an entry.
      const { rows } = await client.query("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'orders'");
      expect(rows[0]).toEqual({ n_tup_upd: '1', n_tup_hot_upd: '1' });
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    const row = await getOrder(database.db, 1601);
    expect(row.lease_until).toEqual(queueLease);
    expect(row.claim_until!.getTime()).toBeGreaterThan(Date.now() + 3_000);
    expect(row.claim_until!.getTime()).toBeLessThanOrEqual(queueLease.getTime());
  });

  it.each([
    ['ends before the claim: a producer would offer the order while it is delivered', 1701, 1_000],
    ['ends long after it: a dead worker would keep the order hidden until then', 1702, 3_600_000],
  ])('a queue lease that %s is set to end with the claim', async (_, id, leaseMs) => {
    await insertOrders(database.db, [id], 'http://127.0.0.1:9/cb');
    await database
      .db('orders')
      .where({ id })
      .update({ lease_until: new Date(Date.now() + leaseMs) });
    expect(await claimOrders(database.db, [String(id)], 5_000, 262_144)).toHaveLength(1);
    const row = await getOrder(database.db, id);
    expect(row.lease_until).toEqual(row.claim_until);
    expect(row.claim_until!.getTime()).toBeGreaterThan(Date.now() + 3_000);
    expect(row.claim_until!.getTime()).toBeLessThan(Date.now() + 6_000);
  });

  it('a claim by a process from before migration 006 (no claim_until) counts until its lease_until, whatever claim_until said', async () => {
    await insertOrders(database.db, [1801, 1802], 'http://127.0.0.1:9/cb');
    const ranOut = {
      claim_token: '00000000-0000-4000-8000-00000000180a',
      claim_until: new Date(Date.now() - 1),
      lease_until: new Date(Date.now() - 1),
    };
    const olderClaim = (token: string) => ({ claim_token: token, lease_until: new Date(Date.now() + 60_000) });
    // 1801: a claim of this version ran out (its worker died), and the older process claims the order
    // straight away. 1802: the older process's lease comes in between.
    await database.db('orders').whereIn('id', [1801, 1802]).update(ranOut);
    await database
      .db('orders')
      .where({ id: 1802 })
      .update({ lease_until: new Date(Date.now() + 60_000), claim_token: null });
    await database.db('orders').where({ id: 1801 }).update(olderClaim('00000000-0000-4000-8000-00000000180b'));
    await database.db('orders').where({ id: 1802 }).update(olderClaim('00000000-0000-4000-8000-00000000180c'));
    for (const id of [1801, 1802]) expect((await getOrder(database.db, id)).claim_until).toBeNull();
    expect(await claimOrders(database.db, ['1801', '1802'], 5_000, 262_144)).toEqual([undefined, undefined]);

    // A status change drops the claim whole.
    await database
      .db('orders')
      .where({ id: 1801 })
      .update({ claim_token: '00000000-0000-4000-8000-00000000180d', claim_until: new Date(Date.now() + 60_000) });
    await database.db('orders').where({ id: 1801 }).update({ status: 6 });
    const row = await getOrder(database.db, 1801);
    expect([row.claim_token, row.claim_until, row.lease_until]).toEqual([null, null, null]);
  });

  it('two workers claiming overlapping orders in opposite order: each order goes to exactly one', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => 1000 + i);
    await insertOrders(database.db, ids, 'http://127.0.0.1:9/cb');
    const forward = ids.map(String);
    const backward = [...forward].reverse();
    const rounds = await Promise.all(
      Array.from({ length: 8 }, (_, i) => claimOrders(database.db, i % 2 ? backward : forward, 60_000, 262_144)),
    );
    const winners = new Map<string, number>();
    for (const round of rounds) for (const order of round) if (order) winners.set(order.id, (winners.get(order.id) ?? 0) + 1);
    expect(winners.size).toBe(200);
    expect([...winners.values()].every((count) => count === 1)).toBe(true);
  });

  it('a row another transaction holds is skipped, not waited for: the rest of the batch is claimed at once', async () => {
    await insertOrders(database.db, [1501, 1502, 1503], 'http://127.0.0.1:9/cb');
    const held = await holdRow(1502);
    try {
      const claimed = await claimOrders(database.db, ['1501', '1502', '1503'], 60_000, 262_144);
      expect(claimed.map((order) => order?.id)).toEqual(['1501', undefined, '1503']);
    } finally {
      await held.release();
    }
    expect((await getOrder(database.db, 1502)).claim_token).toBeNull();
  });
});

describe('recordAttempts', () => {
  it('applies each outcome to its own order, fenced by its own token, and logs every attempt', async () => {
    const ids = [2001, 2002, 2003, 2004, 2005];
    await insertOrders(database.db, ids, 'http://127.0.0.1:9/cb');
    const claimed = (await claimOrders(database.db, ids.map(String), 60_000, 262_144)) as ClaimedOrder[];
    // 2005's claim ran out and another worker holds it now: our record for it must not apply.
    await database.db('orders').where({ id: 2005 }).update({ claim_token: '00000000-0000-4000-8000-000000002005' });

    const applied = await recordAttempts(database.db, [
      attempt(claimed[0], { kind: 'delivered' }),
      attempt(claimed[1], { kind: 'retry', error: 'HTTP 503', delayMs: 60_000 }),
      attempt(claimed[2], { kind: 'failed', error: 'HTTP 404: no such order' }),
      attempt(claimed[3], { kind: 'released', error: 'aborted by shutdown' }),
      attempt(claimed[4], { kind: 'delivered' }),
    ]);

    expect(applied).toEqual([true, true, true, true, false]);
    const rows = await Promise.all(ids.map((id) => getOrder(database.db, id)));
    expect(rows.map((row) => row.status)).toEqual([6, 5, 7, 5, 5]);
    expect(rows.map((row) => row.attempts)).toEqual([1, 1, 1, 0, 0]);
    expect(rows.map((row) => row.last_error)).toEqual([null, 'HTTP 503', 'HTTP 404: no such order', null, null]);
    expect(rows[1].next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect(rows[4].claim_token).toBe('00000000-0000-4000-8000-000000002005');
    expect(rows.slice(0, 4).every((row) => row.claim_token === null)).toBe(true);

    const log = await database.db('delivery_log').whereIn('order_id', ids).orderBy('order_id');
    expect(log.map((entry) => [Number(entry.order_id), entry.outcome, entry.superseded])).toEqual([
      [2001, 'delivered', false],
      [2002, 'retry', false],
      [2003, 'failed', false],
      [2004, 'released', false],
      [2005, 'delivered', true],
    ]);
    expect(log[0].http_status).toBe(200);
    expect(log[0].duration_ms).toBe(7);
  });

  it('a finish with a claim that is no longer current changes nothing, and is logged as superseded', async () => {
    await insertOrders(database.db, [900], 'http://127.0.0.1:9/cb');
    const [first] = (await claimOrders(database.db, ['900'], 60_000, 262_144)) as ClaimedOrder[];
    await database
      .db('orders')
      .where({ id: 900 })
      .update({ claim_until: new Date(Date.now() - 1) }); // the claim ran out
    const [second] = (await claimOrders(database.db, ['900'], 60_000, 262_144)) as ClaimedOrder[];
    expect(second.token).not.toBe(first.token);

    expect(await recordAttempts(database.db, [attempt(first, { kind: 'delivered' })])).toEqual([false]);
    expect((await getOrder(database.db, 900)).status).toBe(5);
    expect(await recordAttempts(database.db, [attempt(second, { kind: 'delivered' })])).toEqual([true]);
    expect(await recordAttempts(database.db, [attempt(second, { kind: 'delivered' })])).toEqual([false]);

    const order = await getOrder(database.db, 900);
    expect([order.status, order.attempts]).toEqual([6, 1]);
    const log = await database.db('delivery_log').where({ order_id: 900 }).orderBy('id');
    expect(log.map((entry) => entry.superseded)).toEqual([true, false, true]);
  });

  it('a record that already applied does not apply twice (the token is spent), even in the same batch', async () => {
    await insertOrders(database.db, [3001], 'http://127.0.0.1:9/cb');
    const [order] = (await claimOrders(database.db, ['3001'], 60_000, 262_144)) as ClaimedOrder[];
    expect(
      await recordAttempts(database.db, [attempt(order, { kind: 'delivered' }), attempt(order, { kind: 'retry', error: 'x', delayMs: 1 })]),
    ).toEqual([true, false]);
    const row = await getOrder(database.db, 3001);
    expect([row.status, row.attempts]).toEqual([6, 1]);
    const log = await database.db('delivery_log').where({ order_id: 3001 }).orderBy('id');
    expect(log.map((entry) => [entry.outcome, entry.superseded])).toEqual([
      ['delivered', false],
      ['retry', true],
    ]);
  });

  it('a held row answers ROW_BUSY and writes nothing for it, while the rest of the batch applies', async () => {
    await insertOrders(database.db, [3101, 3102], 'http://127.0.0.1:9/cb');
    const [a, b] = (await claimOrders(database.db, ['3101', '3102'], 60_000, 262_144)) as ClaimedOrder[];
    const held = await holdRow(3101);
    try {
      expect(await recordAttempts(database.db, [attempt(a, { kind: 'delivered' }), attempt(b, { kind: 'delivered' })])).toEqual([
        ROW_BUSY,
        true,
      ]);
    } finally {
      await held.release();
    }
    expect((await getOrder(database.db, 3101)).status).toBe(5);
    expect(await database.db('delivery_log').where({ order_id: 3101 })).toHaveLength(0);
    expect(await recordAttempts(database.db, [attempt(a, { kind: 'delivered' })])).toEqual([true]);
  });

  it("the worker's writes ask again for a held row until it is free, and its neighbours are not held up", async () => {
    await insertOrders(database.db, [3201, 3202], 'http://127.0.0.1:9/cb');
    const [a, b] = (await claimOrders(database.db, ['3201', '3202'], 60_000, 262_144)) as ClaimedOrder[];
    const writes = batchedOrderWrites(database.db, { claimTtlMs: 60_000, maxPayloadBytes: 262_144, batchLingerMs: 0 });
    const held = await holdRow(3201);
    let heldRecorded: boolean | undefined;
    const recordingHeld = writes.record(attempt(a, { kind: 'delivered' })).then((applied) => (heldRecorded = applied));
    try {
      expect(await writes.record(attempt(b, { kind: 'delivered' }))).toBe(true);
      await sleep(300);
      expect(heldRecorded).toBeUndefined(); // still asking: nothing decided while the row is held
    } finally {
      await held.release();
    }
    await recordingHeld;
    expect(heldRecorded).toBe(true);
    expect((await getOrder(database.db, 3201)).status).toBe(6);
  });
});

describe('deferrals', () => {
  /** How far after its own update (Postgres' now(), as the trigger sets updated_at) an order comes due. */
  const dueAfterUpdateMs = async (id: number) => {
    const { rows } = await database.db.raw(
      'SELECT (extract(epoch FROM next_attempt_at - updated_at) * 1000)::bigint AS ms FROM orders WHERE id = ?',
      [id],
    );
    return Number(rows[0].ms);
  };

  it("hands claimed orders back for their own delay on Postgres' clock, fenced by the token", async () => {
    await insertOrders(database.db, [4001, 4002], 'http://127.0.0.1:9/cb');
    const [a, b] = (await claimOrders(database.db, ['4001', '4002'], 60_000, 262_144)) as ClaimedOrder[];
    const stale = { ...b, token: '00000000-0000-4000-8000-000000004002' };

    expect(
      await deferClaimedOrders(database.db, [
        { order: a, delayMs: 600_000 },
        { order: stale, delayMs: 600_000 },
      ]),
    ).toEqual([true, false]);
    const [rowA, rowB] = await Promise.all([getOrder(database.db, 4001), getOrder(database.db, 4002)]);
    expect(await dueAfterUpdateMs(4001)).toBe(600_000);
    expect(rowA.claim_token).toBeNull();
    expect(rowA.attempts).toBe(0);
    expect(rowB.claim_token).toBe(b.token); // not ours to hand back
  });

  it('a claimed order whose row is held answers ROW_BUSY and is left as it was', async () => {
    await insertOrders(database.db, [4101], 'http://127.0.0.1:9/cb');
    const [order] = (await claimOrders(database.db, ['4101'], 60_000, 262_144)) as ClaimedOrder[];
    const held = await holdRow(4101);
    try {
      expect(await deferClaimedOrders(database.db, [{ order, delayMs: 600_000 }])).toEqual([ROW_BUSY]);
    } finally {
      await held.release();
    }
    expect((await getOrder(database.db, 4101)).claim_token).toBe(order.token);
  });

  it('defers unclaimed orders (never earlier than they already were), leaves claimed, held and forged ones alone, and counts what it deferred', async () => {
    await insertOrders(database.db, [5001, 5002, 5003, 5004], 'http://127.0.0.1:9/cb');
    const later = new Date(Date.now() + 7_200_000);
    await database
      .db('orders')
      .where({ id: 5002 })
      .update({ next_attempt_at: later, lease_until: new Date(Date.now() + 60_000) });
    const [claimed] = (await claimOrders(database.db, ['5003'], 60_000, 262_144)) as ClaimedOrder[];
    const delayMs = 600_000;

    const held = await holdRow(5004);
    try {
      const deferred = await deferUnclaimedOrders(database.db, [
        { orderId: '5001', delayMs },
        { orderId: '5002', delayMs },
        { orderId: '5003', delayMs },
        { orderId: '5004', delayMs },
        { orderId: 'not-an-id', delayMs },
      ]);
      expect(deferred).toBe(2);
    } finally {
      await held.release();
    }
    const rows = await Promise.all([5001, 5002, 5003, 5004].map((id) => getOrder(database.db, id)));
    expect(await dueAfterUpdateMs(5001)).toBe(delayMs);
    expect(rows[0].lease_until).toBeNull(); // its job is being dropped: the queue lease goes with it
    expect(rows[1].next_attempt_at.getTime()).toBe(later.getTime());
    expect(rows[1].lease_until).toBeNull();
    expect(rows[2].claim_token).toBe(claimed.token);
    expect(rows[2].next_attempt_at.getTime()).toBeLessThan(Date.now() + delayMs / 2);
    expect(rows[3].next_attempt_at.getTime()).toBeLessThan(Date.now() + delayMs / 2);
  });
});

describe('recordAttempts with a delay that is not a whole number', () => {
  it('records it (rounded), and the records batched with it', async () => {
    await insertOrders(database.db, [7001, 7002], 'http://127.0.0.1:9/cb');
    const [a, b] = (await claimOrders(database.db, ['7001', '7002'], 60_000, 262_144)) as ClaimedOrder[];
    const writes = batchedOrderWrites(database.db, { claimTtlMs: 60_000, maxPayloadBytes: 262_144, batchLingerMs: 0 });
    const results = await Promise.all([
      writes.record(attempt(a, { kind: 'retry', error: 'HTTP 503', delayMs: 2504.3054 })),
      writes.record(attempt(b, { kind: 'delivered' })),
    ]);
    expect(results).toEqual([true, true]);
    expect((await getOrder(database.db, 7002)).status).toBe(6);
  });
});
