import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors/config-error';

function errorOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('METRICS_PORT and METRICS_HOST', () => {
  it('serve nothing unless METRICS_PORT is set; an empty value is unset', () => {
    expect(loadConfig({}).metrics).toBeUndefined();
    expect(loadConfig({ METRICS_PORT: '' }).metrics).toBeUndefined();
    // A host alone does not turn the server on.
    expect(loadConfig({ METRICS_HOST: '0.0.0.0' }).metrics).toBeUndefined();
  });

  it('listen on loopback by default: the status page has no login', () => {
    expect(loadConfig({ METRICS_PORT: '9464' }).metrics).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loadConfig({ METRICS_PORT: '9464', METRICS_HOST: '' }).metrics).toEqual({ host: '127.0.0.1', port: 9464 });
  });

  it.each([['1'], ['65535'], [' 8080 ']])('accept port %j', (port) => {
    expect(loadConfig({ METRICS_PORT: port }).metrics?.port).toBe(Number(port));
  });

  it.each([['0.0.0.0'], ['::'], ['::1'], ['10.1.2.3'], ['localhost'], ['metrics.internal'], [' 127.0.0.1 ']])('accept host %j', (host) => {
    expect(loadConfig({ METRICS_PORT: '9464', METRICS_HOST: host }).metrics?.host).toBe(host.trim());
  });

  it.each([
    ['METRICS_PORT', '0'], // any free port: nobody would know where to scrape
    ['METRICS_PORT', '-1'],
    ['METRICS_PORT', '65536'],
    ['METRICS_PORT', '80.5'],
    ['METRICS_PORT', 'http'],
    ['METRICS_HOST', 'http://127.0.0.1'],
    ['METRICS_HOST', '127.0.0.1:9464'],
    ['METRICS_HOST', 'has space'],
    ['METRICS_HOST', '-leading-hyphen'],
  ])('%s=%s stops the start with a message naming the variable', (name, value) => {
    const env = name === 'METRICS_HOST' ? { METRICS_PORT: '9464', [name]: value } : { [name]: value };
    expect(errorOf(env)).toMatch(new RegExp(`^${name}: `));
  });

  it('is checked even when METRICS_PORT is unset, so a typo never waits for the day metrics are turned on', () => {
    expect(errorOf({ METRICS_HOST: 'not a host' })).toMatch(/^METRICS_HOST: /);
  });
});
