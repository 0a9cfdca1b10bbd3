#!/usr/bin/env node
// The first step of `npm test`: makes sure everything the suite needs is here before it runs, so a
// fresh machine fails once, up front, with what to do, instead of file by file.
//
//   1. Chromium, libfaketime, redis-server and promtool are found; missing ones are installed from Debian's
//      packages when we are root with apt-get, else it stops naming what to install and how. First,
//      because a Redis that is down is started with that redis-server when there is no Docker.
//   2. Postgres at TEST_POSTGRES_URL and Redis at TEST_REDIS_URL answer (started as `npm run demo`
//      starts them when they are local and down), and the Postgres role may create databases.
//
// Exit 0 when all is there, 1 with one message otherwise. Nothing is ever skipped instead.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const { Client } = require('pg');
const { ensureServices, postgresService, redisService, hasCommand } = require('./lib/services');
const { TOOLS, planTools } = require('./lib/test-tools');

// The test helpers' defaults (test/helpers/database.ts, queue.ts).
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const POLICY_RC_D = '/usr/sbin/policy-rc.d';

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`\nnpm test cannot run yet: ${err.message}`);
    process.exit(1);
  },
);

async function main() {
  const found = ensureTools();
  await ensureServices([postgresService(POSTGRES_URL, 'TEST_POSTGRES_URL'), redisService(REDIS_URL, 'TEST_REDIS_URL')], 'npm test');
  await checkCreateDatabase();
  console.log(`npm test: postgres and redis answer; ${TOOLS.map((tool) => `${tool.name} ${found[tool.name]}`).join(', ')}`);
}

/** Every test file makes a database of its own: the role must be allowed to. */
async function checkCreateDatabase() {
  const client = new Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 5000 });
  client.on('error', () => {}); // reported through the query's rejection
  try {
    await client.connect();
    const { rows } = await client.query(
      'SELECT current_user AS role, rolsuper OR rolcreatedb AS may FROM pg_roles WHERE rolname = current_user',
    );
    if (!rows[0]?.may) {
      throw new Error(
        `the Postgres role ${rows[0]?.role} may not create databases, and each test file creates one. ` +
          'Set TEST_POSTGRES_URL to a role that may (postgres://user:password@host:5432/postgres), or ALTER ROLE ... CREATEDB.',
      );
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/** Each tool's path, after installing the missing ones when the plan says so; throws when it says stop. */
function ensureTools() {
  const missing = () => TOOLS.filter((tool) => !tool.find(process.env));
  const variablesSet = /** @type {string[]} */ (TOOLS.map((tool) => tool.variable).filter((name) => name && process.env[name]));
  const plan = planTools(missing(), { root: process.getuid?.() === 0, apt: hasCommand('apt-get'), variablesSet });
  if (plan.state === 'stop') throw new Error(plan.message);
  if (plan.state === 'install') {
    console.log(`npm test: not found here, so installing Debian's ${plan.packages.join(' ')} with apt-get`);
    installPackages(plan.packages, plan.withoutRecommends);
    const still = missing();
    if (still.length > 0) {
      throw new Error(
        `apt-get installed ${plan.packages.join(' ')}, yet ${still.map((tool) => tool.name).join(', ')} cannot be found: install ${still.map((tool) => tool.elsewhere).join('; ')}`,
      );
    }
  }
  return Object.fromEntries(TOOLS.map((tool) => [tool.name, tool.find(process.env)]));
}

/**
 * apt-get install, with no package's service started: the tests want the programs, never a server
 * of the package's left running (prometheus would start one, redis-server another on 6379). A
 * policy-rc.d that exits 101 is Debian's way to forbid the starts; ours only when there is none.
 * A prometheus that starts anyway is stopped, as it is ours.
 */
function installPackages(packages, withoutRecommends) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const ownPolicy = !fs.existsSync(POLICY_RC_D);
  const prometheusBefore = pidsOf('prometheus');
  if (ownPolicy) fs.writeFileSync(POLICY_RC_D, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    aptGet(['update', '-qq'], env);
    const withRecommends = packages.filter((name) => !withoutRecommends.includes(name));
    if (withRecommends.length > 0) aptGet(['install', '-y', '-qq', ...withRecommends], env);
    if (withoutRecommends.length > 0) aptGet(['install', '-y', '-qq', '--no-install-recommends', ...withoutRecommends], env);
  } finally {
    if (ownPolicy) fs.rmSync(POLICY_RC_D, { force: true });
    for (const pid of pidsOf('prometheus')) {
      if (prometheusBefore.includes(pid)) continue;
      console.log(`npm test: stopping the prometheus server its package started (pid ${pid})`);
      process.kill(pid, 'SIGTERM');
    }
  }
}

function pidsOf(name) {
  const result = spawnSync('pgrep', ['-x', name], { encoding: 'utf8' });
  return (result.stdout || '').split('\n').filter(Boolean).map(Number);
}

function aptGet(args, env) {
  const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
  if (result.error || result.status !== 0) {
    throw new Error(
      `\`apt-get ${args.join(' ')}\` failed (${result.error?.message ?? `exit ${result.status ?? result.signal}`}); install the packages by hand`,
    );
  }
}
