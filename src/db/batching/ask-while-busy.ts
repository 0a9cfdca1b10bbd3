import { RowBusyError } from '../../errors/row-busy-error';
import { type OrBusy, ROW_BUSY } from './locked-batch';

/**
 * Pauses between asks: short at first, since a batch of ours holds its rows for milliseconds; longer
 * for an outside transaction (the order system, an admin) that holds one for a while.
 */
const PAUSES_MS = [5, 10, 25, 50, 100, 250, 500, 1000];

/**
 * Asks again, after a pause, for as long as the answer is ROW_BUSY (the row was held by another
 * transaction and skipped), up to `giveUpAfterMs`. Each ask goes through the batcher again, so a
 * held row waits alone, outside the batch it would otherwise stall.
 */
export async function askWhileBusy<T>(ask: () => Promise<OrBusy<T>>, giveUpAfterMs = 10_000): Promise<T> {
  const startedAt = performance.now();
  for (let asked = 0; ; asked++) {
    const answer = await ask();
    if (answer !== ROW_BUSY) return answer;
    if (performance.now() - startedAt >= giveUpAfterMs) {
      throw new RowBusyError(`the order's row was held by another transaction for over ${giveUpAfterMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, PAUSES_MS[Math.min(asked, PAUSES_MS.length - 1)]));
  }
}
