import { StatementBatcher } from '../../src/db/batching/statement-batcher';
import { createLogger } from '../../src/observability/logger';
import { progressOf, Watchdog, watchdogBoundMs, watchProgress } from '../../src/watchdog';

describe('progressOf', () => {
  it.each([
    [0, 'moving'],
    [999, 'moving'],
    [1000, 'stuck'],
    [1999, 'stuck'],
    [2000, 'wedged'],
    [60_000, 'wedged'],
  ])('%i ms running with a 1000 ms bound is %s', (runningMs, progress) => {
    expect(progressOf(runningMs, 1000)).toBe(progress);
  });
});

describe('Watchdog', () => {
  it('judges by the longest-running work, and forgets work once it ends', async () => {
    const watchdog = new Watchdog(1000);
    let finish!: () => void;
    const start = performance.now();
    const long = watchdog.watch('claim', () => new Promise<void>((resolve) => (finish = resolve)));
    void watchdog.watch('record', () => new Promise(() => undefined));
    expect(watchdog.check(start + 1500)).toMatchObject({ progress: 'stuck', what: 'claim' });
    expect(watchdog.check(start + 2500).progress).toBe('wedged');
    finish();
    await long;
    expect(watchdog.check(start + 2500)).toMatchObject({ progress: 'wedged', what: 'record' });
  });

  it('is moving with nothing to watch', () => {
    expect(new Watchdog(1000).check()).toEqual({ progress: 'moving', what: undefined, runningMs: 0 });
  });

  it('forgets work that failed', async () => {
    const watchdog = new Watchdog(1000);
    await expect(watchdog.watch('claim', () => Promise.reject(new Error('gone')))).rejects.toThrow('gone');
    expect(watchdog.check(performance.now() + 5000).progress).toBe('moving');
  });

  it('gives a daemon 120 s with the default statement timeout of 30 s', () => {
    expect(watchdogBoundMs(30_000)).toBe(120_000);
  });
});

it("a statement batch that never ends is seen by the batcher's watchdog, under the batcher's name", async () => {
  const watchdog = new Watchdog(1000);
  const batcher = new StatementBatcher<string, string>(() => new Promise(() => undefined), { watchdog, name: 'claim' });
  void batcher.submit('1');
  await new Promise((resolve) => setImmediate(resolve));
  expect(watchdog.check(performance.now() + 1000)).toMatchObject({ progress: 'stuck', what: 'claim' });
});

describe('watchProgress', () => {
  afterEach(() => jest.useRealTimers());

  it('says when work is stuck and moving again, and calls onWedged while it is past twice the bound', async () => {
    jest.useFakeTimers();
    const lines: { level: number; msg: string }[] = [];
    const logger = createLogger('info', { write: (line: string) => lines.push(JSON.parse(line)) });
    const watchdog = new Watchdog(5000);
    const onWedged = jest.fn();
    const timer = watchProgress(watchdog, logger, onWedged);
    try {
      let finish!: () => void;
      const claim = watchdog.watch('claim', () => new Promise<void>((resolve) => (finish = resolve)));
      jest.advanceTimersByTime(5000);
      expect(lines.map((l) => l.msg)).toEqual(['work has run past its bound; /readyz is red until it ends']);
      expect(onWedged).not.toHaveBeenCalled();
      jest.advanceTimersByTime(5000);
      expect(onWedged).toHaveBeenCalled();
      expect(lines.at(-1)).toMatchObject({ level: 60, what: 'claim' });
      finish();
      await claim;
      jest.advanceTimersByTime(1000);
      expect(lines.at(-1)?.msg).toBe('work is moving again');
    } finally {
      clearInterval(timer);
    }
  });
});
