import { createDb, type Db } from '../../src/db/connection';
import { PreparedStatement } from '../../src/db/prepared-statement';
import { createTestDatabase, terminateConnections, type TestDatabase } from '../helpers/database';

// The hot statements run by name: parsed and planned once per pooled connection, and again on a
// connection that replaced one Postgres dropped.
let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, 1); // one connection, so every call below shares its session
});

afterAll(async () => {
  await db.destroy();
  await database.drop();
});

const doubled = new PreparedStatement<{ doubled: number }>('test_doubled', 'SELECT ?::int * 2 AS doubled');

/** The statements this pool's one session has prepared, by name. */
async function preparedInSession(): Promise<string[]> {
  const result = await db.raw<{ rows: { name: string }[] }>('SELECT name FROM pg_prepared_statements ORDER BY name');
  return result.rows.map((row) => row.name);
}

it("is prepared once in a session and then run by name with each call's values", async () => {
  expect((await doubled.run(db, [2])).rows).toEqual([{ doubled: 4 }]);
  expect((await doubled.run(db, [21])).rows).toEqual([{ doubled: 42 }]);
  expect(await preparedInSession()).toEqual(['test_doubled']);
});

it('is prepared again on the connection that replaces one Postgres closed', async () => {
  await doubled.run(db, [1]);
  await terminateConnections(database.name);
  // The pool may hand out the dead connection once before it learns that it is gone.
  const afterward = await doubled.run(db, [5]).catch(() => doubled.run(db, [5]));
  expect(afterward.rows).toEqual([{ doubled: 10 }]);
  expect(await preparedInSession()).toEqual(['test_doubled']);
});
