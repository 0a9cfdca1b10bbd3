'use strict';
// Small helpers every scenario of the bench shares.
const fs = require('node:fs');
const { cpuSeconds, serverPids } = require('./processes');

/** Busy CPU-seconds of the whole machine (all processes: daemons, sink, Postgres, Redis). */
function machineCpuSeconds() {
  const [, user, nice, system, , , irq, softirq, steal] = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / 100;
}

async function waitUntil(check, timeoutMs, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('bench scenario did not finish in time');
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The p-quantile (0..1) of a list of numbers, nearest rank. */
function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

module.exports = { machineCpuSeconds, waitUntil, percentile };

/**
 * Starts counting CPU by process: the bench process itself (peers and ceilings run in it), each named
 * group of child pids (`{ daemons: [...], sink: [...] }`), and every Postgres and Redis process. Answers
 * a function that gives CPU-seconds per group since the start, plus `rest`: the machine's busy time that
 * none of them account for (processes that came and went, steal time, anything else running). `rest`
 * is not clamped: a small negative value is the counters' rounding (ticks of 10 ms per process).
 */
function cpuMeter(children) {
  // pgrep runs first, then every counter is read back to back, so the windows match.
  const groupsNow = () => ({ ...children, ...serverPids() });
  const startGroups = groupsNow();
  const before = new Map();
  for (const pids of Object.values(startGroups)) for (const pid of pids) before.set(pid, cpuSeconds(pid));
  const benchBefore = process.cpuUsage();
  const machineBefore = machineCpuSeconds();
  return () => {
    const endGroups = groupsNow();
    const machine = machineCpuSeconds() - machineBefore;
    const bench = process.cpuUsage(benchBefore);
    const used = { bench: (bench.user + bench.system) / 1e6 };
    // A pid seen only now started during the run: all its CPU is the run's. One gone by now reads 0:
    // its CPU is lost to `rest`, not subtracted.
    const since = (pid) => Math.max(0, cpuSeconds(pid) - (before.get(pid) ?? 0));
    for (const [name, pids] of Object.entries(endGroups)) used[name] = pids.reduce((sum, pid) => sum + since(pid), 0);
    const accounted = Object.values(used).reduce((sum, seconds) => sum + seconds, 0);
    return { machine, ...used, rest: machine - accounted };
  };
}

/**
 * Times `run` and the CPU over it: { seconds, ordersPerSecond, cpuSecondsPer1k (the whole machine),
 * cpuSecondsPer1kBy (per process, see cpuMeter) } for `n` items, plus whatever `run` answers.
 * `children`: the scenario's own child processes by name, as cpuMeter takes them.
 */
async function measured(n, run, children = {}) {
  const cpuUsed = cpuMeter(children);
  const started = process.hrtime.bigint();
  const extra = await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const per1k = Object.fromEntries(Object.entries(cpuUsed()).map(([name, cpu]) => [name, (cpu / n) * 1000]));
  const { machine, ...by } = per1k;
  return { seconds, ordersPerSecond: n / seconds, cpuSecondsPer1k: machine, cpuSecondsPer1kBy: by, ...extra };
}

module.exports.measured = measured;
