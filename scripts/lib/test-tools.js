// The programs the tests run besides Node, Postgres and Redis: where each is, and what to do when one
// is missing. Finding takes the environment and an `exists` test, and planning is pure, so both have
// unit tests; scripts/test-setup.js does the installing.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

/** Names a Chromium goes by on PATH: Debian's, Ubuntu's and Fedora's packages, Google's builds. */
const CHROMIUM_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** Debian's multiarch triplet for this CPU: where faketime's library is. */
const MULTIARCH = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

/**
 * What the tests need, each with the Debian package that provides it and what to tell someone
 * without apt. `find(env, exists)` returns its path, or undefined.
 */
const TOOLS = [
  {
    name: 'Chromium',
    neededBy: 'the status page test (a real headless browser)',
    debianPackage: 'chromium',
    variable: 'CHROMIUM_PATH',
    elsewhere: `Chromium or Google Chrome, as one of ${CHROMIUM_NAMES.join(', ')} on PATH or at CHROMIUM_PATH`,
    find: findChromium,
  },
  {
    name: 'libfaketime',
    neededBy: 'the skewed-clock test (replicas whose clocks are off)',
    debianPackage: 'faketime',
    elsewhere:
      'libfaketime (https://github.com/wolfcw/libfaketime), its libfaketime.so.1 under /usr/lib/<multiarch>/faketime, /usr/lib64/faketime or /usr/local/lib/faketime',
    find: findLibfaketime,
  },
  {
    name: 'redis-server',
    neededBy: 'the tests that kill and restart a Redis of their own',
    debianPackage: 'redis-server',
    elsewhere: 'Redis 7, with its redis-server binary on PATH',
    find: (env = process.env, exists = isExecutable) => onPath(['redis-server'], env, exists),
  },
  {
    name: 'promtool',
    neededBy: "the alert rules' test (Prometheus' own checker)",
    debianPackage: 'prometheus',
    variable: 'PROMTOOL_PATH',
    // It recommends prometheus-node-exporter, a server the tests have no use for.
    withoutRecommends: true,
    elsewhere: 'promtool (it comes with Prometheus: https://prometheus.io/download/), on PATH or at PROMTOOL_PATH',
    find: findPromtool,
  },
];

/** CHROMIUM_PATH when set (and then only it: a wrong value is the user's to fix), else the first Chromium on PATH. */
function findChromium(env = process.env, exists = isExecutable) {
  if (env.CHROMIUM_PATH) return exists(env.CHROMIUM_PATH) ? env.CHROMIUM_PATH : undefined;
  return onPath(CHROMIUM_NAMES, env, exists);
}

/** PROMTOOL_PATH when set (and then only it), else promtool on PATH. */
function findPromtool(env = process.env, exists = isExecutable) {
  if (env.PROMTOOL_PATH) return exists(env.PROMTOOL_PATH) ? env.PROMTOOL_PATH : undefined;
  return onPath(['promtool'], env, exists);
}

function findLibfaketime(_env = process.env, exists = isFile, arch = process.arch) {
  const dirs = [
    MULTIARCH[arch] && `/usr/lib/${MULTIARCH[arch]}/faketime`,
    '/usr/lib64/faketime',
    '/usr/lib/faketime',
    '/usr/local/lib/faketime',
  ];
  return dirs
    .filter(Boolean)
    .map((dir) => path.join(dir, 'libfaketime.so.1'))
    .find(exists);
}

function onPath(names, env, exists) {
  const dirs = (env.PATH || '').split(path.delimiter).filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = path.join(dir, name);
      if (exists(candidate)) return candidate;
    }
  }
  return undefined;
}

/**
 * What to do about the tools, given which are missing (`missing`: the TOOLS entries not found) and
 * what this machine allows:
 *
 *   nothing missing                                  → ready
 *   missing, root and apt-get                        → install   their Debian packages
 *   missing, apt-get but not root                    → stop      with the sudo apt-get command
 *   missing, no apt-get                              → stop      naming each tool and where the tests look
 *   missing, and its CHROMIUM_PATH or PROMTOOL_PATH
 *   set (in `variablesSet`) to nothing there         → stop      naming the variable, whatever the machine
 *
 * A variable that names nothing is never installed over: it says which program the user wants.
 * @param {typeof TOOLS} missing
 * @param {{ root: boolean, apt: boolean, variablesSet?: string[] }} machine
 * @returns {{ state: 'ready' } | { state: 'install', packages: string[], withoutRecommends: string[] } | { state: 'stop', message: string }}
 */
function planTools(missing, { root, apt, variablesSet = [] }) {
  if (missing.length === 0) return { state: 'ready' };
  const misnamed = missing.filter((tool) => tool.variable && variablesSet.includes(tool.variable));
  const packages = missing.map((tool) => tool.debianPackage);
  if (root && apt && misnamed.length === 0) {
    return {
      state: 'install',
      packages,
      withoutRecommends: missing.filter((tool) => tool.withoutRecommends).map((tool) => tool.debianPackage),
    };
  }

  const lines = missing.map((tool) => `  - ${tool.name}, for ${tool.neededBy}`);
  let how;
  if (misnamed.length > 0)
    how = misnamed.map((tool) => `${tool.variable} names no executable: point it at ${tool.name}, or unset it.`).join('\n');
  else if (apt) how = `Install with: sudo apt-get install ${packages.join(' ')}`;
  else how = `Install:\n${missing.map((tool) => `  - ${tool.elsewhere}`).join('\n')}`;
  return { state: 'stop', message: `not on this machine:\n${lines.join('\n')}\n${how}` };
}

function isExecutable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function isFile(file) {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

module.exports = { TOOLS, CHROMIUM_NAMES, findChromium, findLibfaketime, findPromtool, planTools };
