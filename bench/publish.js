'use strict';
// Where a bench run is written down: the build and machine it ran on, BENCHMARKS.md (above its kept
// part) and bench/baseline.json, from one run or (`--report`) from several.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { renderReport } = require('./report');

/** The commit measured, `-dirty` when the work tree had changes. */
function build() {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { cwd: __dirname, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
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
    cpu: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    postgres: version('psql', ['--version']),
    redis: version('redis-server', ['--version']),
  };
}

const BENCHMARKS = path.join(__dirname, '..', 'BENCHMARKS.md');
const BASELINE = path.join(__dirname, 'baseline.json');
const KEPT_MARK = '<!-- written by hand from here on: npm run bench rewrites only what is above -->';

/** The hand-kept part of BENCHMARKS.md (what the goals say, the method, how to reproduce), from its mark on. */
function keptPart() {
  const current = fs.existsSync(BENCHMARKS) ? fs.readFileSync(BENCHMARKS, 'utf8') : '';
  const at = current.indexOf(KEPT_MARK);
  return `\n${at >= 0 ? current.slice(at) : `${KEPT_MARK}\n`}`;
}

/** Which entries of `sizes` each section of the results reads. */
const SECTION_SIZES = {
  overhead: ['overhead', 'pairs'],
  realistic: ['realistic', 'pairs'],
  scaling: ['realistic', 'pairs'],
  ceilings: ['N'],
  peers: ['N', 'warmup'],
  orderCallbacks: ['N', 'warmup'],
  pickup: ['latencySeconds', 'latencyRates', 'pairs'],
  backlog: ['backlog'],
  isolation: ['isolation', 'pairs'],
  partners: ['partners', 'warmup', 'pairs'],
};

/**
 * `--report FILE...`: BENCHMARKS.md from several runs' JSON, each section from the last file that has
 * it, so a section measured again (`--only`) joins the figures of the last full run.
 */
function reportFrom(files) {
  const merged = { sources: /** @type {object[]} */ ([]), sizes: {} };
  for (const file of files) {
    const run = JSON.parse(fs.readFileSync(file, 'utf8'));
    const { at, command, build: commit, machine: box, sizes, sources, ...sections } = run;
    merged.sources.push(...(sources ?? [{ at, command, build: commit }]));
    Object.assign(merged, sections, { at, command, machine: box });
    // Only the sizes this file's sections ran with: another file's sections keep theirs.
    for (const section of Object.keys(sections)) for (const key of SECTION_SIZES[section] ?? []) merged.sizes[key] = sizes[key];
  }
  publishReport(merged);
  console.log(`written: BENCHMARKS.md, bench/baseline.json, from ${files.join(', ')}`);
}

/** BENCHMARKS.md, and the figures behind it (bench/baseline.json: the one result file kept in git). */
function publishReport(results) {
  fs.writeFileSync(BENCHMARKS, renderReport(results).markdown + keptPart());
  fs.writeFileSync(BASELINE, `${JSON.stringify(results, null, 1)}\n`);
}

module.exports = { build, machine, publishReport, reportFrom };
