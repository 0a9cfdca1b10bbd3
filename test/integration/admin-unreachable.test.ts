// Admin commands with Postgres or Redis down: a bounded answer with what the other service had, the
// unreachable one named with its address (no password), exit 3; and the exit codes, --version, --json.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { Queue } from 'bullmq';

import { redisConnection } from '../../src/queue/callback-queue';
import { type CliResult, runCli } from '../helpers/cli';
import { CLI, daemonEnv } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { freePort } from '../helpers/free-port';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';
import { PrivateRedis } from '../helpers/redis-server';

/** What the issue promises: an answer within 10 s, whatever is down. */
const ANSWER_MS = 10_000;
const PASSWORD = 's3cret-pw';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
  await insertOrders(database.db, [1, 2, 3], 'https://partner-a.example/cb', {}, 5);
  await insertOrders(database.db, [4], 'https://partner-a.example/cb', {}, 7);
  await database.db.raw('ANALYZE orders'); // orders at 6, 7 and others are the planner's estimates
});
afterAll(() => database.drop());

async function timed(args: string[], env: Record<string, string>): Promise<CliResult & { ms: number }> {
  const started = Date.now();
  const result = await runCli(args, env);
  return { ...result, ms: Date.now() - started };
}

function expectNoNoise(result: CliResult): void {
  expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(result.stderr).not.toMatch(/Acquire connection error|Knex|Tarn/); // no pool noise
  expect(result.stdout + result.stderr).not.toContain(PASSWORD);
}

describe('Redis down', () => {
  let redis: PrivateRedis;
  let redisUrl: string;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    redisUrl = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`;
  });
  afterAll(() => redis.stop());

  it('stats prints the Postgres figures, names Redis at its address without the password, and exits 3', async () => {
    const env = { DATABASE_URL: database.url, REDIS_URL: redisUrl };
    expect((await runCli(['stats', '--json'], env)).code).toBe(0); // the same command works while Redis is up
    await redis.crash();

    const text = await timed(['stats'], env);
    expect(text.ms).toBeLessThan(ANSWER_MS);
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/ready \(5\)\s+3\n/);
    expect(text.stdout).toMatch(/queue order-callbacks\n\s+- \(redis unreachable/);
    expect(text.stderr).toBe(
      `order-callbacks: redis unreachable at redis://redacted@127.0.0.1:${redis.port} (connect ECONNREFUSED 127.0.0.1:${redis.port})\n`,
    );
    expectNoNoise(text);

    const json = await timed(['stats', '--json'], env);
    expect(json.code).toBe(3);
    const stats = JSON.parse(json.stdout);
    // 6 and others are estimates, which the planner never puts below 1: the exact figure is the ready one.
    expect(stats.orders).toMatchObject({ ready: 3, readyAtLeast: false, failed: 1 });
    expect(stats.queue).toBeNull();
    expect(stats.unreachable).toEqual([
      { service: 'redis', address: `redis://redacted@127.0.0.1:${redis.port}`, error: expect.stringMatching(/ECONNREFUSED/) },
    ]);
    expectNoNoise(json);
  });

  it('inspect prints the order and its attempts, and says where the job is cannot be read', async () => {
    await redis.crash();
    const env = { DATABASE_URL: database.url, REDIS_URL: redisUrl };
    const text = await timed(['inspect', '4'], env);
    expect(text.ms).toBeLessThan(ANSWER_MS);
    expect(text.code).toBe(3);
    expect(text.stdout).toMatch(/^order 4: failed \(status 7/);
    expect(text.stdout).toMatch(new RegExp(`job in queue\\s+\\(redis unreachable at redis://redacted@127\\.0\\.0\\.1:${redis.port}\\)`));
    expectNoNoise(text);

    const json = JSON.parse((await runCli(['inspect', '4', '--json'], env)).stdout);
    expect(json).toMatchObject({ order: { id: '4', status: 7 }, attempts: [], job: null, unreachable: [{ service: 'redis' }] });
  });

  it('partners, which needs both, exits 3 with one line naming Redis', async () => {
    await redis.crash();
    const result = await timed(['partners'], { DATABASE_URL: database.url, REDIS_URL: redisUrl });
    expect(result.ms).toBeLessThan(ANSWER_MS);
    expect(result).toMatchObject({ code: 3, stdout: '' });
    expect(result.stderr).toMatch(/^order-callbacks: redis unreachable at redis:\/\/redacted@127\.0\.0\.1:\d+ \(connect ECONNREFUSED/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('Postgres down', () => {
  const queueName = uniqueQueueName();
  let closedUrl: string;
  beforeAll(async () => {
    closedUrl = `postgres://postgres:${PASSWORD}@127.0.0.1:${await freePort()}/order_callbacks`;
    const queue = new Queue(queueName, { connection: redisConnection(SHARED_REDIS_URL) });
    await queue.add('callback', { orderId: '7' }, { jobId: 'order-7' });
    await queue.add('callback', { orderId: '8' }, { jobId: 'order-8', delay: 60_000 });
    await queue.close();
  });
  afterAll(() => obliterateQueue(queueName));
  const env = () => daemonEnv(closedUrl, queueName);

  it('stats at a closed port prints the queue depths from Redis, one line about Postgres, exit 3', async () => {
    const result = await timed(['stats'], env());
    expect(result.ms).toBeLessThan(ANSWER_MS);
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(
      /^orders \(~: the planner's estimate\)\n\s+- \(postgres unreachable at postgres:\/\/redacted@127\.0\.0\.1:\d+\/order_callbacks\)\n/,
    );
    expect(result.stdout).toMatch(new RegExp(`queue ${queueName}\\n\\s+waiting\\s+1\\n\\s+active\\s+0\\n\\s+delayed\\s+1`));
    expect(result.stderr).toMatch(
      /^order-callbacks: postgres unreachable at postgres:\/\/redacted@127\.0\.0\.1:\d+\/order_callbacks \(connect ECONNREFUSED [^)]+\)\n$/,
    );
    expectNoNoise(result);

    const stats = JSON.parse((await runCli(['stats', '--json'], env())).stdout);
    expect(stats).toMatchObject({ orders: null, queue: { waiting: 1, delayed: 1 }, unreachable: [{ service: 'postgres' }] });
  });

  it('inspect prints where the job is, exit 3', async () => {
    const result = await timed(['inspect', '7'], env());
    expect(result.ms).toBeLessThan(ANSWER_MS);
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/^order 7: \(postgres unreachable at postgres:\/\/redacted@[^)]+\)\n\s+job in queue\s+waiting\n$/);
    expectNoNoise(result);
  });

  it.each([[['requeue', '--all', '--dry-run']], [['secrets', 'list']], [['migrate', 'status']], [['migrate']]])(
    '%j exits 3 with one line',
    async (args) => {
      const result = await timed(args, env());
      expect(result.ms).toBeLessThan(ANSWER_MS);
      expect(result).toMatchObject({ code: 3, stdout: '' });
      expect(result.stderr).toMatch(
        /^order-callbacks: postgres unreachable at postgres:\/\/redacted@127\.0\.0\.1:\d+\/order_callbacks \(connect ECONNREFUSED [^)]+\)\n$/,
      );
      expectNoNoise(result);
    },
  );

  it('a Postgres, or a Redis, that accepts the connection and never answers is given up on within the bound', async () => {
    const silent = net.createServer(() => undefined); // accepts, reads nothing, answers nothing
    const sockets = new Set<net.Socket>();
    silent.on('connection', (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as net.AddressInfo).port;
    try {
      const noPostgres = await timed(['stats'], { ...env(), DATABASE_URL: `postgres://postgres:${PASSWORD}@127.0.0.1:${silentPort}/x` });
      expect(noPostgres.ms).toBeLessThan(ANSWER_MS);
      expect(noPostgres.code).toBe(3);
      expect(noPostgres.stdout).toMatch(new RegExp(`queue ${queueName}\\n\\s+waiting\\s+1`));
      expect(noPostgres.stderr).toMatch(
        /^order-callbacks: postgres unreachable at postgres:\/\/redacted@127\.0\.0\.1:\d+\/x \(no answer within [\d.]+ s\)\n$/,
      );
      expectNoNoise(noPostgres);

      const noRedis = await timed(['stats'], { DATABASE_URL: database.url, REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${silentPort}` });
      expect(noRedis.ms).toBeLessThan(ANSWER_MS);
      expect(noRedis.code).toBe(3);
      expect(noRedis.stdout).toMatch(/ready \(5\)\s+3\n/);
      expect(noRedis.stderr).toMatch(
        /^order-callbacks: redis unreachable at redis:\/\/redacted@127\.0\.0\.1:\d+ \(no answer within [\d.]+ s\)\n$/,
      );
      expectNoNoise(noRedis);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 30_000);
});

describe('exit codes, --version, --json', () => {
  it.each([
    [['stats', '--bogus'], /unknown option '--bogus'/],
    [['inspect'], /missing required argument 'orderId'/],
    [['stats', '--minutes', 'abc'], /--minutes: expected a whole number/],
    [['secrets', 'add'], /required option '--host <host>' not specified/],
  ])('%j is a usage error: exit 2, before anything is opened', async (args, message) => {
    // Postgres and Redis are unreachable here: a usage error is reported as such all the same.
    const result = await runCli(args, {
      DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/x`,
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
  });

  it('--help documents the exit codes', async () => {
    for (const args of [['--help'], ['stats', '--help'], ['requeue', '--help']]) {
      const result = await runCli(args);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/Exit codes:\n\s+0 .*\n\s+1 .*\n\s+2 .*usage.*\n\s+3 .*unreachable/);
    }
  });

  it("--version prints package.json's version", async () => {
    const { version } = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    expect(await runCli(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('secrets list --json gives ids and dates, never a secret', async () => {
    const env = { DATABASE_URL: database.url };
    expect(JSON.parse((await runCli(['secrets', 'list', '--json'], env)).stdout)).toEqual([]);
    const added = JSON.parse((await runCli(['secrets', 'add', '--host', 'partner-a.example', '--json'], env)).stdout);
    expect(added).toEqual({ id: expect.any(String), host: 'partner-a.example', secret: expect.stringMatching(/^whsec_/) });
    const listed = await runCli(['secrets', 'list', '--json'], env);
    expect(listed).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(listed.stdout)).toEqual([
      { id: added.id, host: 'partner-a.example', createdAt: expect.any(String), retiredAt: null, active: true },
    ]);
    expect(listed.stdout).not.toContain(added.secret);
    expect(
      JSON.parse((await runCli(['secrets', 'retire', '--host', 'partner-a.example', '--id', added.id, '--json'], env)).stdout),
    ).toEqual({ retired: 1 });
  });

  it('migrate --json and migrate status --json', async () => {
    const env = { DATABASE_URL: database.url };
    const status = await runCli(['migrate', 'status', '--json'], env);
    expect(status).toMatchObject({ code: 0, stderr: '' });
    const { applied, pending } = JSON.parse(status.stdout);
    expect(applied).toContain('001_create_orders.js');
    expect(pending).toEqual([]);
    expect(await runCli(['migrate', '--json'], env)).toEqual({ code: 0, stdout: '{"applied":[]}\n', stderr: '' });
    expect((await runCli(['migrate', 'status'], env)).stdout).toMatch(/applied\s+001_create_orders\.js\n[\s\S]*up to date\n$/);
  });
});

// util-linux `script` runs the CLI on a pseudo-terminal, as a person at a terminal would.
const onTerminal = existsSync('/usr/bin/script') ? describe : describe.skip;
onTerminal('requeue progress', () => {
  const script = (args: string[], env: Record<string, string>) =>
    new Promise<string>((resolve, reject) =>
      execFile(
        '/usr/bin/script',
        ['-qec', [process.execPath, CLI, ...args].join(' '), '/dev/null'],
        { env: { PATH: process.env.PATH, ...env }, timeout: 30_000 },
        (err, stdout) =>
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- an ExecFileException is an Error; its type, an Omit<> of one, does not say so
          err ? reject(err) : resolve(stdout),
      ),
    );

  it('on a terminal: done of total and an ETA, redrawn in place; with --json or on a pipe, none', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => 100 + i);
    await insertOrders(database.db, ids, 'https://partner-a.example/cb', {}, 7);
    const env = { DATABASE_URL: database.url };
    const shown = await script(['requeue', '--id', ids.join(','), '--batch-size', '10'], env);
    expect(shown).toMatch(/\rrequeued \d+ of 30 \(\d+%\), \d+s elapsed, ETA [\d-]+s?\x1b\[K/);
    expect(shown).toMatch(/\rrequeued 30 of 30 \(100%\)[^\r]*\x1b\[K\r?\nrequeued 30 of 30 matching order\(s\)/);

    await database.db('orders').whereIn('id', ids).update({ status: 7 });
    const json = await script(['requeue', '--id', ids.join(','), '--batch-size', '10', '--json'], env);
    expect(json).not.toMatch(/ETA/);
    expect(JSON.parse(json.trim())).toMatchObject({ matched: 30, changed: 30 });

    await database.db('orders').whereIn('id', ids).update({ status: 7 });
    expect(await runCli(['requeue', '--id', ids.join(','), '--batch-size', '10'], env)).toMatchObject({ code: 0, stderr: '' });
  });
});
