import type { LeaseCursor } from '../db/lease-ready-orders';

/**
 * Where a producer run starts reading orders_ready_idx: at its front, or where the last run stopped.
 *
 * Every leased order leaves a dead entry at the front of the index until VACUUM removes it, and a scan
 * from the front walks past all of them: a page's index scan took ~1.5 ms on a fresh million-order
 * backlog and ~10 ms once 750,000 of them had been leased, on an idle machine
 * (docs/decisions/0003-producer-continues-after-its-last-lease.md). So a
 * run that follows a full queue continues after the last order it leased. Orders can become ready
 * behind that point, though: an order moved to 5 keeps the next_attempt_at it was created with, a
 * transaction can commit rows dated before the cursor, and SKIP LOCKED passes over rows someone held.
 * So a run starts at the front whenever an order became ready (NOTIFY), whenever the last run reached
 * the end of the visible orders, and at least every `frontEveryMs` (the poll interval: the bound the
 * poll already gives an order whose NOTIFY was lost).
 */
export class ScanStart {
  private resumeAt: LeaseCursor | undefined;
  private frontDue = true;
  private lastFrontAt = -Infinity;

  constructor(
    private readonly frontEveryMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Orders became ready, perhaps behind the cursor: the next run starts at the front. */
  ordersBecameReady(): void {
    this.frontDue = true;
  }

  /** Where the next run starts: undefined for the front. Call once per run. */
  nextRun(): LeaseCursor | undefined {
    const at = this.resumeAt;
    this.resumeAt = undefined; // a run that fails says nothing (stoppedAt is not called): front next time
    if (at === undefined || this.frontDue || this.now() - this.lastFrontAt >= this.frontEveryMs) {
      this.frontDue = false;
      this.lastFrontAt = this.now();
      return undefined;
    }
    return at;
  }

  /** The run finished: it stopped at `cursor` with the queue full, or reached the end (undefined). */
  stoppedAt(cursor: LeaseCursor | undefined): void {
    this.resumeAt = cursor;
  }
}
