import { askWhileBusy } from '../../src/db/batching/ask-while-busy';
import { ROW_BUSY } from '../../src/db/batching/locked-batch';
import { RowBusyError } from '../../src/errors/row-busy-error';

describe('askWhileBusy', () => {
  it('asks again while the row is busy and answers the first real answer', async () => {
    const answers: (boolean | typeof ROW_BUSY)[] = [ROW_BUSY, ROW_BUSY, false];
    let asked = 0;
    expect(await askWhileBusy(async () => answers[asked++])).toBe(false);
    expect(asked).toBe(3);
  });

  it('gives up with a RowBusyError once the row has been busy for giveUpAfterMs', async () => {
    let asked = 0;
    const asking = askWhileBusy(async () => {
      asked += 1;
      return ROW_BUSY;
    }, 50);
    await expect(asking).rejects.toBeInstanceOf(RowBusyError);
    expect(asked).toBeGreaterThan(1);
  });
});
