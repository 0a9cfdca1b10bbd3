// docs/configuration.md cannot drift from the schema in src/config.ts: every variable the daemon reads
// has a row there with its default and its range, and the page names no variable the daemon ignores.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { z } from 'zod';

import { type Config, CONFIG_SCHEMA, CONFIG_VARIABLES, loadConfig } from '../../src/config';

const doc = readFileSync(path.join(__dirname, '..', '..', 'docs', 'configuration.md'), 'utf8');

interface Row {
  defaultValue: string;
  range: string;
}

/** Table rows whose first cell is one variable in backticks: `| `NAME` | default | range | trade |`. */
const rows = new Map<string, Row>();
for (const line of doc.split('\n')) {
  const cells = /^\| `([A-Z][A-Z0-9_]*)` \|/.test(line)
    ? line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim())
    : undefined;
  if (cells) rows.set(cells[0].replace(/`/g, ''), { defaultValue: cells[1].replace(/`/g, ''), range: cells[2] });
}

const schemaDefaults = CONFIG_SCHEMA.parse({}) as Record<string, unknown>;

/** The number schema inside a variable's optional/default wrappers, or undefined for other kinds. */
function numberSchema(name: string): z.ZodNumber | undefined {
  let type: unknown = CONFIG_SCHEMA.shape[name as keyof typeof CONFIG_SCHEMA.shape];
  while (!(type instanceof z.ZodNumber) && typeof (type as { unwrap?: unknown }).unwrap === 'function') {
    type = (type as { unwrap: () => unknown }).unwrap();
  }
  return type instanceof z.ZodNumber ? type : undefined;
}

const words = (text: string) => text.split(/[^\w.:/@-]+/);

/** Defaults worked out from other settings: the page gives the formula and the value it comes to. */
const DERIVED: Record<string, (config: Readonly<Config>) => number> = {
  QUEUE_LEASE_MS: (c) => c.queueLeaseMs,
  CLAIM_TTL_MS: (c) => c.claimTtlMs,
  JOB_LOCK_MS: (c) => c.jobLockMs,
  SHUTDOWN_GRACE_MS: (c) => c.shutdownGraceMs,
  HOST_MAX_IN_FLIGHT: (c) => c.partnerRules.maxInFlight,
  BREAKER_MIN_ATTEMPTS: (c) => c.partnerRules.minAttempts,
  PARTNER_MAX_PAUSE_MS: (c) => c.partnerRules.maxPauseMs,
};

describe('docs/configuration.md', () => {
  it('has one row for every variable the daemon reads', () => {
    expect(CONFIG_VARIABLES.filter((name) => !rows.has(name))).toEqual([]);
  });

  it('names no variable the daemon does not read', () => {
    const named = new Set(doc.match(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g));
    expect([...named].filter((name) => !CONFIG_VARIABLES.includes(name))).toEqual([]);
  });

  it.each(CONFIG_VARIABLES.filter((name) => schemaDefaults[name] !== undefined).map((name) => [name]))(
    'gives the default of %s',
    (name) => {
      expect({ name, default: rows.get(name)?.defaultValue.split(' ')[0] }).toEqual({ name, default: String(schemaDefaults[name]) });
    },
  );

  it.each(Object.entries(DERIVED))('gives the value the default of %s comes to', (name, of) => {
    const config = loadConfig({});
    expect(words(rows.get(name)?.defaultValue ?? '')).toContain(String(of(config)));
  });

  it('says "unset" or names a value for every variable without a default of its own', () => {
    const withoutDefault = CONFIG_VARIABLES.filter((name) => schemaDefaults[name] === undefined);
    expect(withoutDefault.filter((name) => !/^(unset|\d|[A-Za-z_`])/.test(rows.get(name)?.defaultValue ?? ''))).toEqual([]);
  });

  it.each(CONFIG_VARIABLES.filter((name) => numberSchema(name)).map((name) => [name]))('gives the range of %s', (name) => {
    const number = numberSchema(name)!;
    expect({ name, range: rows.get(name)?.range }).toEqual({ name, range: `${number.minValue}–${number.maxValue}` });
  });
});
