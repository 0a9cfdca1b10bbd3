import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

let database: TestDatabase;
let healthy: Receiver;
let broken: Receiver;
const queueName = uniqueQueueName();

beforeAll(async () => {
  database = await createTestDatabase();
  healthy = await new Receiver(() => ({ status: 200, delayMs: 5 })).start();
  broken = await new Receiver(() => ({ never: true })).start(); // answers after the full timeout: never
});

afterAll(async () => {
  await stopAllDaemons();
  await healthy.stop();
  await broken.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

const count = async (where: string) => Number((await database.db.raw(`SELECT count(*) AS n FROM orders WHERE ${where}`)).rows[0].n);

it('a partner that always times out does not take the workers from a healthy one', async () => {
  const MAX_ATTEMPTS = 3;
  const env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
    WORKER_CONCURRENCY: '20',
    MAX_QUEUED_JOBS: '200',
    CALLBACK_TIMEOUT_MS: '1000',
    MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    RETRY_BASE_MS: '100',
    RETRY_MAX_MS: '200',
    BREAKER_FAILURE_THRESHOLD: '5',
    BREAKER_COOLDOWN_MS: '2000',
    BREAKER_MAX_COOLDOWN_MS: '4000',
  });
  // The broken partner's orders come first: without isolation they would fill every worker slot.
  await insertOrders(database.db, Array.from({ length: 5000 }, (_, i) => i + 1), broken.url());
  await insertOrders(database.db, Array.from({ length: 2000 }, (_, i) => 100_000 + i), healthy.url());
  await Promise.all([spawnDaemon('start', env), spawnDaemon('start', env)]);

  await waitFor('every healthy order delivered', async () => (await count('id >= 100000 AND status = 6')) === 2000, 90_000);

  // Meanwhile the broken partner's orders wait behind its open circuit, nearly all untried.
  const brokenPending = await count('id < 100000 AND status = 5');
  expect(brokenPending).toBeGreaterThan(4500);
  expect(broken.requests.length).toBeLessThan(300); // the first failures and the probes, not 5,000 timeouts
  // Deferral never counts an attempt: none ended 7 before its MAX_ATTEMPTS-th real failure.
  expect(await count(`id < 100000 AND status = 7 AND attempts <> ${MAX_ATTEMPTS}`)).toBe(0);
  expect(await count(`id < 100000 AND attempts > ${MAX_ATTEMPTS}`)).toBe(0);
  const attemptsMade = Number((await database.db.raw('SELECT coalesce(sum(attempts), 0) AS n FROM orders WHERE id < 100000')).rows[0].n);
  expect(attemptsMade).toBe(Number((await database.db.raw("SELECT count(*) AS n FROM delivery_log WHERE order_id < 100000 AND outcome <> 'released' AND NOT superseded")).rows[0].n));
  expect(healthy.overlaps.size).toBe(0);
}, 120_000);

it("after a partner's circuit opens, one order comes due at its end to probe with, the rest once the probe has answered; all go once it is back", async () => {
  let down = true;
  const flaky = await new Receiver(() => (down ? { status: 500 } : { status: 200 })).start();
  const own = await createTestDatabase(); // no other test's orders or daemons in the way
  const queue = uniqueQueueName();
  const cooldownMs = 3000;
  const env = deliveryEnv(own.url, queue, SHARED_REDIS_URL, {
    // Few orders queued or in flight when the circuit opens: those are handed back at the gate until the
    // circuit's end, one by one; the bulk deferral under test is for the backlog behind them.
    WORKER_CONCURRENCY: '1',
    MAX_QUEUED_JOBS: '3',
    CALLBACK_TIMEOUT_MS: '1000',
    MAX_ATTEMPTS: '50',
    RETRY_BASE_MS: '100',
    RETRY_MAX_MS: '200',
    BREAKER_FAILURE_THRESHOLD: '3',
    BREAKER_COOLDOWN_MS: String(cooldownMs),
  });
  try {
    const ids = Array.from({ length: 30 }, (_, i) => i + 1);
    await insertOrders(own.db, ids, flaky.url());
    await spawnDaemon('start', env);
    const dueTimes = async (): Promise<number[]> => {
      const { rows } = await own.db.raw('SELECT next_attempt_at AS t FROM orders WHERE status = 5 ORDER BY 1');
      return rows.map((row: { t: Date }) => row.t.getTime());
    };
    // Settled: the circuit is open and none of the partner's orders is due within the next 1.5 s.
    await waitFor('the circuit open and the backlog deferred', async () => {
      const due = await dueTimes();
      return due.length === ids.length && due[0] > Date.now() + 1500;
    }, 10_000);
    const due = await dueTimes();
    const [first, last] = [due[0], due[due.length - 1]];
    // Due when the circuit ends: the probe alone. The backlog, and the orders that were queued or in
    // flight when it opened (handed back at the gate, or retried and held by the producer), the probe's
    // timeout (1 s) and margin (3 s) later.
    expect(due.filter((t) => t < first + 100).length).toBe(1);
    expect(due.filter((t) => t > last - 100).length).toBeGreaterThanOrEqual(20);
    expect(last - first).toBeGreaterThanOrEqual(3900);

    down = false;
    const delivered = async () => Number((await own.db.raw('SELECT count(*) AS n FROM orders WHERE status = 6')).rows[0].n);
    await waitFor('every order delivered once the partner is back', async () => (await delivered()) === ids.length, cooldownMs + 1000 + 3000 + 8000);
  } finally {
    await stopAllDaemons();
    await flaky.stop();
    await own.drop();
    await obliterateQueue(queue);
  }
}, 60_000);
