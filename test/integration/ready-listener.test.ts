import { Client } from 'pg';
import { createLogger } from '../../src/observability/logger';
import { ReadyListener } from '../../src/producer/ready-listener';
import { advisoryLockFree, createTestDatabase, terminateConnections, type TestDatabase } from '../helpers/database';
import { waitFor } from '../helpers/wait-for';

const KEY = 'order-callbacks:producer:test';

let database: TestDatabase;
let listener: ReadyListener;
let other: Client;
let sessionsOpened = 0;

beforeEach(async () => {
  database = await createTestDatabase();
  sessionsOpened = 0;
  // onReady is called once each time the session (re)connects, and on every NOTIFY.
  listener = new ReadyListener(database.url, () => (sessionsOpened += 1), createLogger('silent'));
  await listener.start();
  other = await connectOther();
});

afterEach(async () => {
  await listener.close();
  await other.end().catch(() => undefined);
  await database.drop();
});

/** Another session on the same database: another replica's producer. */
async function connectOther(): Promise<Client> {
  const client = new Client({ connectionString: database.url });
  client.on('error', () => undefined); // terminated on purpose below
  await client.connect();
  return client;
}

it('a lock asked for again by the session that holds it is let go by one unlock', async () => {
  expect(await listener.tryLock(KEY)).toBe(true);
  expect(await listener.tryLock(KEY)).toBe(true);
  expect(await advisoryLockFree(other, KEY)).toBe(false);

  await listener.unlock(KEY);
  expect(await advisoryLockFree(other, KEY)).toBe(true);
});

it('a lock lost with its session is asked for again on the new session, and refused while another holds it', async () => {
  expect(await listener.tryLock(KEY)).toBe(true);
  await terminateConnections(database.name);
  await other.end().catch(() => undefined);
  await waitFor('the listener back on a new session', async () => sessionsOpened >= 2 || undefined);

  other = await connectOther();
  await other.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [KEY]);
  expect(await listener.tryLock(KEY)).toBe(false);

  await other.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [KEY]);
  expect(await listener.tryLock(KEY)).toBe(true);
});
