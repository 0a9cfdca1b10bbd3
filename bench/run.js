'use strict';
// npm run bench [-- --quick]: end-to-end figures for order-callbacks on this machine, loopback only.
// Every guarantee stays on in every run (claims, conditional updates, delivery log, signatures).
// Each figure is taken twice and the median (of two: the mean) reported; results go to
// bench/results/<time>.json and BENCHMARKS.md.
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { createDatabase } = require('./database');
const { startSink, startDaemon, stop } = require('./processes');

const quick = process.argv.includes('--quick');
const N = quick ? 2000 : 20_000;
const ISOLATION = quick ? { healthy: 1000, bad: 2000 } : { healthy: 5000, bad: 5000 };
const SECRET = `whsec_${crypto.randomBytes(24).toString('base64')}`;

function daemonEnv(databaseUrl, extra = {}) {
  return {
    DATABASE_URL: databaseUrl,
    REDIS_URL: process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379',
    QUEUE_NAME: `oc-bench-${process.pid}-${crypto.randomBytes(3).toString('hex')}`,
    CALLBACK_SECRET: SECRET,
    CALLBACK_ALLOW_PRIVATE: 'true',
    WORKER_CONCURRENCY: '64',
    MAX_QUEUED_JOBS: '2000',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** Busy CPU-seconds of the whole machine (all processes: daemons, sink, Postgres, Redis). */
function machineCpuSeconds() {
  const [, user, nice, system, , , irq, softirq, steal] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return (user + nice + system + irq + softirq + steal) / 100;
}

async function waitUntil(check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('bench scenario did not finish in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** order-callbacks as users run it: `replicas` × `start`, N orders at 5 → all 6. */
async function drain(replicas) {
  const sink = await startSink();
  const db = await createDatabase();
  try {
    await db.insert(1, N, sink.url);
    const env = daemonEnv(db.url);
    const cpuBefore = machineCpuSeconds();
    const started = process.hrtime.bigint();
    const daemons = Array.from({ length: replicas }, () => startDaemon(env));
    await waitUntil(async () => (await db.delivered(1, N + 1)) === N, 600_000);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = machineCpuSeconds() - cpuBefore;
    await Promise.all(daemons.map((d) => stop(d)));
    return { seconds, ordersPerSecond: N / seconds, cpuSecondsPer1k: (cpu / N) * 1000 };
  } finally {
    await stop(sink.child);
    await db.drop();
  }
}

/** The healthy partner's drain time, alone and beside a partner that never answers (2 replicas). */
async function isolation(withBadPartner) {
  const healthy = await startSink();
  const bad = await startSink({ never: true });
  const db = await createDatabase();
  try {
    if (withBadPartner) await db.insert(1, ISOLATION.bad, bad.url);
    await db.insert(1_000_000, ISOLATION.healthy, healthy.url);
    const env = daemonEnv(db.url, { CALLBACK_TIMEOUT_MS: '2000', MAX_ATTEMPTS: '3', HOST_MAX_IN_FLIGHT: '16' });
    const started = process.hrtime.bigint();
    const daemons = [startDaemon(env), startDaemon(env)];
    await waitUntil(async () => (await db.delivered(1_000_000, 1_000_000 + ISOLATION.healthy)) === ISOLATION.healthy, 600_000);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await Promise.all(daemons.map((d) => stop(d)));
    return { seconds };
  } finally {
    await Promise.all([stop(healthy.child), stop(bad.child)]);
    await db.drop();
  }
}

async function twice(run) {
  const a = await run();
  const b = await run();
  const out = {};
  for (const key of Object.keys(a)) out[key] = (a[key] + b[key]) / 2;
  return { ...out, runs: [a, b] };
}

function machine() {
  const version = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0];
    } catch {
      return 'unknown';
    }
  };
  return {
    cores: os.cpus().length,
    node: process.version,
    postgres: version('psql', ['--version']),
    redis: version('redis-server', ['--version']),
  };
}

async function main() {
  const command = `npm run bench${quick ? ' -- --quick' : ''}`;
  console.log(`${command}: N = ${N}, isolation ${ISOLATION.healthy} healthy + ${ISOLATION.bad} to a partner that never answers`);
  const results = {
    at: new Date().toISOString(),
    command,
    machine: machine(),
    N,
    oneReplica: await twice(() => drain(1)),
    twoReplicas: await twice(() => drain(2)),
    healthyAlone: await twice(() => isolation(false)),
    healthyBesideBad: await twice(() => isolation(true)),
  };
  const ratio = results.healthyBesideBad.seconds / results.healthyAlone.seconds;
  const rows = [
    ['order-callbacks, 1 replica', N, results.oneReplica.ordersPerSecond.toFixed(0), results.oneReplica.cpuSecondsPer1k.toFixed(2)],
    ['order-callbacks, 2 replicas', N, results.twoReplicas.ordersPerSecond.toFixed(0), results.twoReplicas.cpuSecondsPer1k.toFixed(2)],
  ];
  const table = [
    '| scenario | N | orders/s | CPU-s per 1k orders (whole machine) |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    '| partner isolation (2 replicas) | healthy drain time |',
    '|---|---|',
    `| healthy partner alone (${ISOLATION.healthy}) | ${results.healthyAlone.seconds.toFixed(2)} s |`,
    `| beside a partner that never answers (${ISOLATION.bad}) | ${results.healthyBesideBad.seconds.toFixed(2)} s (${ratio.toFixed(2)}×; goal ≤ 1.5×) |`,
  ].join('\n');
  console.log(`\n${table}\n`);

  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  const file = path.join(__dirname, 'results', `${results.at.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...results, isolationRatio: ratio }, null, 2));
  const m = results.machine;
  fs.writeFileSync(
    path.join(__dirname, '..', 'BENCHMARKS.md'),
    `# Benchmarks\n\nLast run: ${results.at}, \`${command}\`, on ${m.cores} cores, Node ${m.node}, ${m.postgres}, ${m.redis}.\n` +
      `Everything on one machine over loopback; each figure is the mean of two runs. Raw results: bench/results/.\n\n${table}\n\n` +
      'Not measured yet (issue 5): the raw ceilings (signed POSTs, conditional updates, BullMQ alone), the peers\n' +
      '(seed-loop, bullmq-plain), pickup latency and the million-order backlog.\n',
  );
  console.log(`written: ${path.relative(process.cwd(), file)}, BENCHMARKS.md`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${err.message}`);
    process.exit(1);
  },
);
