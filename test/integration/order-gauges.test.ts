// The order gauges are computed by one replica at a time, per interval, by Postgres' clock; a replica
// that froze past its turn writes nothing when it wakes.
import { randomUUID } from 'node:crypto';

import { takeMaintenanceTurn } from '../../src/db/maintenance';
import { countOrders } from '../../src/db/reports/order-counts';
import { readOrderGauges, storeOrderGauges } from '../../src/db/reports/order-gauges';
import { ORDER_GAUGES_TURN, refreshOrderGauges } from '../../src/observability/refresh-order-gauges';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';

let database: TestDatabase;

beforeEach(async () => {
  database = await createTestDatabase();
});

afterEach(async () => {
  await database.drop();
});

/** What the clock would have done: the last run started `seconds` earlier than it did. */
async function passTime(seconds: number): Promise<void> {
  await database.db.raw("UPDATE maintenance_turns SET last_started_at = last_started_at - ? * interval '1 second'", [seconds]);
}

it('of replicas that try at once, one computes; the next interval, whichever comes first', async () => {
  await insertOrders(database.db, [1, 2, 3], 'https://partner.example/cb');
  expect(await readOrderGauges(database.db)).toBeUndefined();
  const outcomes = await Promise.all(['a:1', 'b:1', 'c:1'].map((holder) => refreshOrderGauges(database.db, holder)));
  expect(outcomes.sort()).toEqual(['notOurTurn', 'notOurTurn', 'refreshed']);
  expect(await readOrderGauges(database.db)).toMatchObject({ ready: 3, readyAtLeast: false, oldestReadyAgeSeconds: expect.any(Number) });

  // Within the interval nobody computes again, whatever the scrapes do.
  await insertOrders(database.db, [4], 'https://partner.example/cb');
  expect(await refreshOrderGauges(database.db, 'b:1')).toBe('notOurTurn');
  expect((await readOrderGauges(database.db))?.ready).toBe(3);
  await passTime(5);
  expect(await refreshOrderGauges(database.db, 'b:1')).toBe('refreshed');
  expect((await readOrderGauges(database.db))?.ready).toBe(4);
});

it('a replica that froze past its turn stores nothing when it wakes; another took the turn', async () => {
  const frozen = { name: ORDER_GAUGES_TURN, token: randomUUID() };
  expect(await takeMaintenanceTurn(database.db, frozen, 'frozen:1', 4500, 30_000)).toBe(true);
  const counts = await countOrders(database.db);
  // While it is held, nobody else computes, even past the interval.
  await passTime(60);
  expect(await refreshOrderGauges(database.db, 'b:1')).toBe('notOurTurn');
  // Its hold runs out (by Postgres' clock); another replica takes over.
  await database.db.raw("UPDATE maintenance_turns SET held_until = now() - interval '1 millisecond'");
  await insertOrders(database.db, [1], 'https://partner.example/cb');
  expect(await refreshOrderGauges(database.db, 'b:1')).toBe('refreshed');
  expect(await storeOrderGauges(database.db, frozen, counts)).toBe(false);
  expect((await readOrderGauges(database.db))?.ready).toBe(1);
});
