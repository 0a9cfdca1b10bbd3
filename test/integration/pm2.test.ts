import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { deliveryEnv, TEST_SECRET } from '../helpers/daemons';
import { createTestDatabase, insertOrders, statusCounts, type TestDatabase } from '../helpers/database';
import { freePortRun } from '../helpers/free-port';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { Receiver } from '../helpers/receiver';
import { waitFor } from '../helpers/wait-for';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const PM2 = path.join(ROOT, 'node_modules', '.bin', 'pm2');

// PM2 for real, with its own home so it never touches another PM2 on the machine.
let pm2Home: string;
let database: TestDatabase;
let queueName: string;
let receiver: Receiver;
let env: NodeJS.ProcessEnv;

const pm2 = (...args: string[]) => run(PM2, args, { cwd: ROOT, env, timeout: 90_000 });

async function replicas(): Promise<{ pid: number; status: string; restarts: number }[]> {
  const { stdout } = await pm2('jlist');
  return (JSON.parse(stdout) as { pid: number; pm2_env: { status: string; restart_time: number } }[]).map((p) => ({
    pid: p.pid,
    status: p.pm2_env.status,
    restarts: p.pm2_env.restart_time,
  }));
}

beforeAll(async () => {
  pm2Home = mkdtempSync(path.join(os.tmpdir(), 'oc-pm2-'));
  database = await createTestDatabase();
  queueName = uniqueQueueName();
  receiver = await new Receiver(() => ({ status: 200, delayMs: 20 })).start();
  env = {
    // PM2 starts apps with the `node` on PATH: make that the Node running this suite (20 or 24).
    PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`,
    HOME: process.env.HOME,
    PM2_HOME: pm2Home,
    ORDER_CALLBACKS_LOG_DIR: path.join(pm2Home, 'logs'),
    ORDER_CALLBACKS_INSTANCES: '2',
    ...deliveryEnv(database.url, queueName, SHARED_REDIS_URL, {
      CALLBACK_SECRET: TEST_SECRET,
      WORKER_CONCURRENCY: '10',
      MAX_QUEUED_JOBS: '50',
      CALLBACK_TIMEOUT_MS: '2000',
    }),
  };
});

afterAll(async () => {
  // pm2 kill stops the apps and its own daemon; then make sure by pid.
  const pids = await replicas()
    .then((r) => r.map((p) => p.pid))
    .catch(() => [] as number[]);
  let daemonPid: number | undefined;
  try {
    daemonPid = Number(readFileSync(path.join(pm2Home, 'pm2.pid'), 'utf8'));
  } catch {
    /* never started */
  }
  await pm2('kill').catch(() => undefined);
  for (const pid of [...pids, daemonPid]) {
    if (!pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  rmSync(pm2Home, { recursive: true, force: true });
  await receiver.stop();
  await database.drop();
  await obliterateQueue(queueName);
});

it('2 replicas under PM2 survive a rolling reload and a restart mid-run: every order ends 6, delivered once, never overlapping', async () => {
  await insertOrders(
    database.db,
    Array.from({ length: 3000 }, (_, i) => i + 1),
    receiver.url(),
  );
  await pm2('start', 'ecosystem.config.js', '--only', 'order-callbacks');
  const first = await replicas();
  expect(first.map((r) => r.status)).toEqual(['online', 'online']);

  const delivered = async () => (await statusCounts(database.db))[6] ?? 0;
  await waitFor('deliveries under way', async () => (await delivered()) >= 300, 60_000);
  await pm2('reload', 'order-callbacks'); // rolling: one replica at a time, each waits for `ready`
  const afterReload = await delivered();
  expect(afterReload).toBeLessThan(3000); // the reload really happened mid-run
  await waitFor('more deliveries', async () => (await delivered()) >= afterReload + 300, 60_000);
  await pm2('restart', 'order-callbacks');
  await waitFor('every order delivered', async () => (await delivered()) === 3000, 90_000);

  const last = await replicas();
  expect(last.every((r) => r.restarts >= 2)).toBe(true);
  expect(last.map((r) => r.pid).some((pid) => first.map((f) => f.pid).includes(pid))).toBe(false);
  await pm2('delete', 'order-callbacks');
  expect(await replicas()).toEqual([]);

  // Graceful stops finish what they started: no order was told twice, none overlapped.
  expect(receiver.overlaps.size).toBe(0);
  const counts = receiver.countsById();
  expect(counts.size).toBe(3000);
  expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
}, 240_000);

it('the split deployment with METRICS_PORT set: producer and workers each serve on a port of their own, none crash-loops', async () => {
  // The producer serves on P+2 and the workers on P+3 and P+4.
  const base = await freePortRun(5);
  const ids = Array.from({ length: 500 }, (_, i) => 10_001 + i);
  await insertOrders(database.db, ids, receiver.url());
  const splitEnv = { ...env, METRICS_PORT: String(base) };
  await run(PM2, ['start', 'ecosystem.config.js', '--only', 'order-callbacks-producer,order-callbacks-worker'], {
    cwd: ROOT,
    env: splitEnv,
    timeout: 90_000,
  });
  try {
    // Producer at P+2, workers at P+3 and P+4 (2 instances): each answers on its own port.
    const ports = [base + 2, base + 3, base + 4];
    await waitFor(
      'every process serves /healthz',
      async () => {
        const answers = await Promise.all(
          ports.map((port) =>
            fetch(`http://127.0.0.1:${port}/healthz`).then(
              (r) => r.status,
              () => 0,
            ),
          ),
        );
        return answers.every((status) => status === 200);
      },
      60_000,
    );
    const delivered = async () => Number((await database.db('orders').whereIn('id', ids).where({ status: 6 }).count({ n: '*' }))[0].n);
    await waitFor('the orders delivered', async () => (await delivered()) === ids.length, 60_000);
    const processes = await replicas();
    expect(processes).toHaveLength(3);
    expect(processes.map((p) => p.status)).toEqual(['online', 'online', 'online']);
    expect(processes.map((p) => p.restarts)).toEqual([0, 0, 0]);
  } finally {
    await pm2('delete', 'all').catch(() => undefined);
  }
}, 180_000);
