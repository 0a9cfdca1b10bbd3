#!/usr/bin/env node
// The registry this project is developed against lacks some platform-specific optional packages
// (other OSes' native builds). `npm install` then leaves them out of package-lock.json and `npm ci`
// refuses the lock ("Missing: ... from lock file"). This adds each missing optional entry with the
// version its parent asks for and the os/cpu npm needs to skip it on other platforms.
// Usage: node scripts/fix-lock-optional.js   (run after `npm install` changes the lock)
'use strict';
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');

const lockPath = require('node:path').join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
const packages = lock.packages;

function platformOf(name, version) {
  // Ask the registry for the exact version, else for any version: os/cpu do not change between them.
  for (const spec of [`${name}@${version}`, name]) {
    try {
      const out = execFileSync('npm', ['view', spec, 'os', 'cpu', 'libc', '--json'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      if (out.trim()) return JSON.parse(out);
    } catch {
      /* try the next spec */
    }
  }
  return guessPlatform(name);
}

function guessPlatform(name) {
  const os = ['darwin', 'linux', 'win32', 'freebsd', 'android', 'openharmony'].find((o) => name.includes(o));
  const cpu = ['arm64', 'x64', 'ia32', 'arm', 'loong64', 'ppc64', 'riscv64', 's390x'].find((c) => name.includes(c));
  const libc = name.includes('musl') ? ['musl'] : name.includes('-gnu') ? ['glibc'] : undefined;
  return { os: os ? [os] : undefined, cpu: cpu ? [cpu] : undefined, libc };
}

let added = 0;
for (const [path, meta] of Object.entries(packages)) {
  for (const [dep, range] of Object.entries(meta.optionalDependencies || {})) {
    const key = `node_modules/${dep}`;
    const nestedKey = path ? `${path}/node_modules/${dep}` : key;
    if (packages[key] || packages[nestedKey]) continue;
    const version = range.replace(/^[\^~=]/, '');
    const platform = platformOf(dep, version);
    const entry = { version, optional: true };
    if (meta.dev) entry.dev = true;
    for (const field of ['cpu', 'os', 'libc']) {
      const value = platform[field];
      if (value) entry[field] = Array.isArray(value) ? value : [value];
    }
    packages[key] = entry;
    added += 1;
    console.log(`added ${key}@${version}`);
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
fs.writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
console.log(`${added} optional entries added`);
