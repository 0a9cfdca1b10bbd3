import { createLogger } from '../../src/observability/logger';
import { ReadyListener } from '../../src/producer/ready-listener';
import { createTestDatabase, insertOrders, terminateConnections, type TestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let listener: ReadyListener;
let calls = 0;

beforeEach(async () => {
  database = await createTestDatabase();
  calls = 0;
  // onReady is called once each time the session (re)connects, and on every NOTIFY.
  listener = new ReadyListener(database.url, () => (calls += 1), createLogger('silent'));
  await listener.start();
});

afterEach(async () => {
  await listener.close();
  await database.drop();
});

it('hears an order become ready, comes back by itself when Postgres ends its session, and hears the next one', async () => {
  await waitFor('connected', () => calls >= 1);
  await insertOrders(database.db, [1], 'https://partner.example/cb');
  await waitFor('the first NOTIFY', () => calls >= 2);

  await terminateConnections(database.name);
  await waitFor('back on a new session', () => calls >= 3, 10_000); // it looks once when it reconnects
  const before = calls;
  await insertOrders(database.db, [2], 'https://partner.example/cb');
  await waitFor('the NOTIFY after it', () => calls > before, 10_000);
});
