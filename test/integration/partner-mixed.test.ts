import { createHash } from 'node:crypto';

import { type ChildDaemon, deliveryEnv, spawnDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders } from '../helpers/database';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver, type Reply } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

// A partner whose orders meet different fates (most delivered; some gone, not found, always failing,
// redirected, or never answered) is a healthy partner with some broken orders. Its healthy orders go
// as fast as an all-healthy partner's, and each other order follows its own retry schedule: the
// partner is never held for them.
const N = 1500;
const MAX_ATTEMPTS = 4;
const CALLBACK_TIMEOUT_MS = 1000;
const fates: Reply[] = [
  { status: 200 },
  { status: 200 },
  { status: 200 },
  { status: 200 },
  { status: 200 },
  { status: 410 },
  { status: 404 },
  { status: 500 },
  { status: 302, headers: { location: 'http://127.0.0.1:9/' } },
  { never: true },
];
/** Scattered as real outcomes are: a hash of the order's id picks its fate. */
const fateOf = (webhookId: string) => createHash('sha256').update(webhookId).digest()[0] % fates.length;
const healthyIds = Array.from({ length: N }, (_, i) => i + 1).filter((id) => fateOf(`order-${id}`) < 5);

afterAll(() => stopAllDaemons());

async function run(mixed: boolean) {
  const database = await createTestDatabase();
  const queueName = uniqueQueueName();
  const partner = await new Receiver((request) => (mixed ? fates[fateOf(request.webhookId)] : { status: 200 })).start();
  const env = deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
    CALLBACK_TIMEOUT_MS: String(CALLBACK_TIMEOUT_MS),
    MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    RETRY_BASE_MS: '1000',
    RETRY_MAX_MS: '4000',
    // Its never-answering orders each hold a slot for a callback timeout: with the default cap (64, across
    // replicas) they would take most of it, and the healthy orders would wait for slots. That is the cap's
    // doing (partner-cap.test.ts), not the breaker's, which is what this test is about.
    HOST_MAX_IN_FLIGHT: '200',
    LOG_LEVEL: 'info',
  });
  const ids = mixed ? Array.from({ length: N }, (_, i) => i + 1) : healthyIds;
  const count = async (where: string) => Number((await database.db.raw(`SELECT count(*) AS n FROM orders WHERE ${where}`)).rows[0].n);
  try {
    // The replicas run before the clock starts: their start-up is no part of the partner's drain.
    const replicas = await Promise.all([spawnDaemon('start', env), spawnDaemon('start', env)]);
    const started = Date.now();
    await insertOrders(database.db, ids, partner.url());
    await waitFor(
      'the healthy orders delivered',
      async () => (await count(`status = 6 AND id IN (${healthyIds.join(',')})`)) === healthyIds.length,
      60_000,
      20,
    );
    const healthyMs = Date.now() - started;
    if (mixed) await waitFor('every order finished', async () => (await count('status = 5')) === 0, 90_000);
    const rows = await database.db('orders').select('id', 'status', 'attempts', 'last_error').orderBy('id');
    const log = await database
      .db('delivery_log')
      .select('order_id', 'started_at')
      .where({ superseded: false })
      .whereNot({ outcome: 'released' })
      .orderBy('id');
    return { healthyMs, rows, log, replicas };
  } finally {
    await stopAllDaemons();
    await partner.stop();
    await database.drop();
    await obliterateQueue(queueName);
  }
}

it("delivers a mixed partner's healthy orders as fast as an all-healthy one's, and each other order follows its own retry schedule", async () => {
  const healthy = await run(false);
  const mixed = await run(true);

  // Its never-answering orders hold slots for a callback timeout at most, once each before their retries.
  expect(mixed.healthyMs).toBeLessThanOrEqual(1.5 * healthy.healthyMs + CALLBACK_TIMEOUT_MS);
  const transitions = (replicas: ChildDaemon[]) =>
    replicas.flatMap((r) => r.lines.filter((line) => line.from !== undefined && line.to !== undefined));
  expect(transitions(mixed.replicas)).toEqual([]);

  const byFate = (fate: number) => mixed.rows.filter((row) => fateOf(`order-${row.id}`) === fate);
  // Delivered, nearly all at once (a request that outlasts the 1 s timeout on a busy box is retried).
  for (const row of byFate(0)) expect(row).toMatchObject({ status: 6 });
  expect(byFate(0).filter((row) => row.attempts > 1).length).toBeLessThanOrEqual(byFate(0).length / 20);
  for (const fate of [5, 6]) for (const row of byFate(fate)) expect(row).toMatchObject({ status: 7, attempts: 1 }); // 410, 404: final
  for (const fate of [7, 8, 9]) {
    for (const row of byFate(fate)) expect(row).toMatchObject({ status: 7, attempts: MAX_ATTEMPTS }); // tried to the end
  }
  // ...each on its own schedule: the gaps between its attempts are its backoff (equal jitter of 1 s,
  // 2 s, 4 s: at least 0.5, 1 and 2 s), never stretched by a hold of the whole partner.
  for (const fate of [7, 8]) {
    for (const row of byFate(fate)) {
      const times = mixed.log.filter((entry) => entry.order_id === row.id).map((entry) => (entry.started_at as Date).getTime());
      const gaps = times.slice(1).map((t, i) => t - times[i]);
      expect(gaps.length).toBe(MAX_ATTEMPTS - 1);
      gaps.forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual(500 * 2 ** i - 50);
        expect(gap).toBeLessThan(1000 * 2 ** i + 3000);
      });
    }
  }
}, 240_000);
