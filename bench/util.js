'use strict';
// Small helpers every scenario of the bench shares.
const fs = require('node:fs');

/** Busy CPU-seconds of the whole machine (all processes: daemons, sink, Postgres, Redis). */
function machineCpuSeconds() {
  const [, user, nice, system, , , irq, softirq, steal] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
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
 * Times `run` and the whole machine's busy CPU over it: { seconds, ordersPerSecond, cpuSecondsPer1k }
 * for `n` items, plus whatever `run` answers.
 */
async function measured(n, run) {
  const cpuBefore = machineCpuSeconds();
  const started = process.hrtime.bigint();
  const extra = await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = machineCpuSeconds() - cpuBefore;
  return { seconds, ordersPerSecond: n / seconds, cpuSecondsPer1k: (cpu / n) * 1000, ...extra };
}

module.exports.measured = measured;
