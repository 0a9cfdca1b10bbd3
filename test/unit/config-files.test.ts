// The files operators copy from list every variable the daemon reads, so none is silently dropped.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { CONFIG_VARIABLES } from '../../src/config';

const read = (file: string) => readFileSync(path.join(__dirname, '..', '..', file), 'utf8');
/** Read as BREAKER_MIN_ATTEMPTS, with a warning: documented there, not offered to new deployments. */
const DEPRECATED = ['BREAKER_FAILURE_THRESHOLD'];
const current = CONFIG_VARIABLES.filter((name) => !DEPRECATED.includes(name));

describe('the configuration files', () => {
  it('docker-compose.yml passes every variable to the daemon', () => {
    // The service addresses are the compose file's own; the secret is required, with its own message.
    const compose = read('docker-compose.yml');
    expect(current.filter((name) => !new RegExp(`^\\s+${name}: \\S`, 'm').test(compose))).toEqual([]);
  });

  it('.env.example lists every variable, set or commented out', () => {
    const example = read('.env.example');
    expect(current.filter((name) => !new RegExp(`^(# )?${name}=`, 'm').test(example))).toEqual([]);
  });

  // docs/configuration.md lists every variable with its default and range: configuration-doc.test.ts.
});
