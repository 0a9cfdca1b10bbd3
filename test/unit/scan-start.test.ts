import type { LeaseCursor } from '../../src/db/lease-ready-orders';
import { ScanStart } from '../../src/producer/scan-start';

const at = (id: number): LeaseCursor => ({ visibleAtUs: 1_000_000n, id: BigInt(id) });

function scanStartAt(frontEveryMs: number) {
  const clock = { ms: 0 };
  return { clock, scan: new ScanStart(frontEveryMs, () => clock.ms) };
}

it('the first run starts at the front of the index', () => {
  const { scan } = scanStartAt(1000);
  expect(scan.nextRun()).toBeUndefined();
});

it('a run after one that stopped on a full queue continues where it stopped', () => {
  const { clock, scan } = scanStartAt(1000);
  scan.nextRun();
  scan.stoppedAt(at(10));
  clock.ms = 200;
  expect(scan.nextRun()).toEqual(at(10));
  scan.stoppedAt(at(20));
  clock.ms = 400;
  expect(scan.nextRun()).toEqual(at(20));
});

it('a run after one that reached the end starts at the front', () => {
  const { clock, scan } = scanStartAt(1000);
  scan.nextRun();
  scan.stoppedAt(undefined);
  clock.ms = 200;
  expect(scan.nextRun()).toBeUndefined();
});

it('orders that became ready send the next run to the front, once', () => {
  const { clock, scan } = scanStartAt(1000);
  scan.nextRun();
  scan.stoppedAt(at(10));
  scan.ordersBecameReady();
  clock.ms = 200;
  expect(scan.nextRun()).toBeUndefined();
  scan.stoppedAt(at(30));
  clock.ms = 400;
  expect(scan.nextRun()).toEqual(at(30));
});

it('a run starts at the front at least every frontEveryMs, however long the queue stays full', () => {
  const { clock, scan } = scanStartAt(1000);
  const starts: (LeaseCursor | undefined)[] = [];
  for (let ms = 0; ms <= 2000; ms += 200) {
    clock.ms = ms;
    starts.push(scan.nextRun());
    scan.stoppedAt(at(ms + 1));
  }
  // Runs at 0, 1000 and 2000 ms start at the front; the ones between continue.
  expect(starts.map((start) => (start === undefined ? 'front' : 'resume'))).toEqual([
    'front',
    'resume',
    'resume',
    'resume',
    'resume',
    'front',
    'resume',
    'resume',
    'resume',
    'resume',
    'front',
  ]);
});

it('a run that failed (stoppedAt not called) sends the next run to the front', () => {
  const { clock, scan } = scanStartAt(1000);
  scan.nextRun();
  scan.stoppedAt(at(10));
  clock.ms = 200;
  expect(scan.nextRun()).toEqual(at(10));
  clock.ms = 400;
  expect(scan.nextRun()).toBeUndefined();
});
