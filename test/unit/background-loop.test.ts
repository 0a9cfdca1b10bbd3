import { startBackgroundLoop } from '../../src/background-loop';
import { createLogger } from '../../src/observability/logger';

afterEach(() => jest.useRealTimers());

it('tries a failed run again sooner than its interval, doubling up to it, and keeps the interval once a run succeeds', async () => {
  jest.useFakeTimers();
  const start = Date.now();
  const runs: number[] = [];
  let failures = 4;
  const loop = startBackgroundLoop({
    name: 'test',
    intervalMs: 1500,
    logger: createLogger('silent'),
    runOnce: async () => {
      runs.push(Date.now() - start);
      if (failures-- > 0) throw new Error('Postgres did not answer');
    },
  });
  await jest.advanceTimersByTimeAsync(6000);
  await loop.stop();
  // 0 fails; +250, +500, +1000 fail; then the 1500 ms interval caps the retry, and the run succeeds.
  expect(runs.slice(0, 7)).toEqual([0, 250, 750, 1750, 3250, 4750]);
});
