import { startBackgroundLoop } from '../../src/background-loop';
import { Lifecycle } from '../../src/lifecycle';
import { createLogger } from '../../src/observability/logger';
import { LogSink } from '../helpers/daemons';

describe('Lifecycle', () => {
  it('releases in reverse order, each once, all of them even when one fails', async () => {
    const logs = new LogSink();
    const lifecycle = new Lifecycle(createLogger('info', logs));
    const released: string[] = [];
    lifecycle.add('db', () => released.push('db'));
    lifecycle.add('queue', () => {
      released.push('queue');
      throw new Error('boom');
    });
    lifecycle.add('worker', async () => released.push('worker'));

    const first = lifecycle.stop();
    expect(lifecycle.stop()).toBe(first);
    await first;
    expect(released).toEqual(['worker', 'queue', 'db']);
    expect(logs.lines).toMatchObject([{ component: 'queue', err: { message: 'boom' } }]);
  });
});

it('a releaser that hangs is abandoned after its time bound and the rest still run', async () => {
  const logs = new LogSink();
  const lifecycle = new Lifecycle(createLogger('info', logs));
  const released: string[] = [];
  lifecycle.add('db', () => released.push('db'));
  lifecycle.add('redis', () => new Promise(() => undefined), 50); // a close() waiting for a Redis that is gone
  await lifecycle.stop();
  expect(released).toEqual(['db']);
  expect(logs.lines).toMatchObject([{ component: 'redis', err: { message: 'redis did not close within 50 ms' } }]);
});

describe('startBackgroundLoop', () => {
  it('keeps running after a failed run, folds many wakes into one more run, and stops once', async () => {
    const logs = new LogSink();
    let runs = 0;
    let release: () => void = () => undefined;
    const loop = startBackgroundLoop({
      name: 'test',
      intervalMs: 60_000,
      logger: createLogger('info', logs),
      runOnce: async () => {
        runs += 1;
        if (runs === 1) throw new Error('first run fails');
        if (runs === 2) await new Promise<void>((resolve) => (release = resolve));
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(runs).toBe(1);
    expect(logs.lines[0]).toMatchObject({ loop: 'test', err: { message: 'first run fails' } });

    loop.wake(); // too soon after the failure: waits for the retry, 250 ms after it
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(runs).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 300)); // run 2, the retry, starts and blocks
    expect(runs).toBe(2);
    loop.wake();
    loop.wake();
    loop.wake();
    release();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(runs).toBe(3); // the three wakes during run 2 made exactly one more run

    const stopped = loop.stop();
    expect(loop.stop()).toBe(stopped);
    await stopped;
    loop.wake();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(runs).toBe(3);
  });
});
