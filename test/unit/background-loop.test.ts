import { type BackgroundLoop, startBackgroundLoop } from '../../src/background-loop';
import { createLogger } from '../../src/observability/logger';

afterEach(() => jest.useRealTimers());

/** A loop whose runs fail or succeed as `outcomes` says, in order (then succeed), with their times. */
function loopWith(outcomes: ('fail' | 'ok')[], intervalMs: number): { loop: BackgroundLoop; runs: number[] } {
  const start = Date.now();
  const runs: number[] = [];
  const loop = startBackgroundLoop({
    name: 'test',
    intervalMs,
    logger: createLogger('silent'),
    runOnce: async () => {
      runs.push(Date.now() - start);
      if (outcomes.shift() === 'fail') throw new Error('Postgres did not answer');
    },
  });
  return { loop, runs };
}

it('tries a failed run again sooner than its interval, doubling up to it, and keeps the interval once a run succeeds', async () => {
  jest.useFakeTimers();
  const { loop, runs } = loopWith(['fail', 'fail', 'fail', 'fail'], 1500);
  await jest.advanceTimersByTimeAsync(6000);
  await loop.stop();
  // 0 fails; +250, +500, +1000 fail; then the 1500 ms interval caps the retry, and the run succeeds.
  expect(runs).toEqual([0, 250, 750, 1750, 3250, 4750]);
});

it('starts the backoff over after a run that succeeded', async () => {
  jest.useFakeTimers();
  const { loop, runs } = loopWith(['fail', 'fail', 'ok', 'fail'], 10_000);
  await jest.advanceTimersByTimeAsync(2000);
  await loop.stop();
  // fail at 0 and 250; ok at 750 (next at the interval); so the next failure is 10,750, not sooner.
  expect(runs).toEqual([0, 250, 750]);
  const again = loopWith(['ok', 'fail', 'fail'], 1000);
  await jest.advanceTimersByTimeAsync(2600);
  await again.loop.stop();
  // ok at 0; fail at 1000, retried 250 ms later (not 1000: the streak began again), then 500 ms later.
  expect(again.runs).toEqual([0, 1000, 1250, 1750]);
});

it('is not woken before its backoff ends while its runs fail', async () => {
  jest.useFakeTimers();
  const { loop, runs } = loopWith(['fail', 'fail'], 10_000);
  await jest.advanceTimersByTimeAsync(100);
  loop.wake();
  await jest.advanceTimersByTimeAsync(100);
  expect(runs).toEqual([0]);
  await jest.advanceTimersByTimeAsync(100);
  expect(runs).toEqual([0, 250]);
  loop.wake();
  await jest.advanceTimersByTimeAsync(400);
  expect(runs).toEqual([0, 250]);
  await jest.advanceTimersByTimeAsync(100);
  expect(runs).toEqual([0, 250, 750]);
  // That one succeeded: a wake (at 800) runs at once again.
  loop.wake();
  await jest.advanceTimersByTimeAsync(1);
  expect(runs).toEqual([0, 250, 750, 800]);
  await loop.stop();
});
