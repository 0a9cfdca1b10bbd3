import { StatementBatcher } from '../../src/db/batching/statement-batcher';

/** A statement stand-in that records each batch it gets and answers when told to. */
function recordingStatement<I>() {
  const batches: I[][] = [];
  const pending: (() => void)[] = [];
  const run = (items: I[]) => {
    batches.push(items);
    return new Promise<string[]>((resolve) => pending.push(() => resolve(items.map((item) => `done ${String(item)}`))));
  };
  const answerAll = () => pending.splice(0).forEach((answer) => answer());
  return { batches, run, answerAll };
}

const nextTick = () => new Promise((resolve) => setImmediate(resolve));

describe('StatementBatcher', () => {
  it('sends the calls of one tick as one batch and gives each caller its own result', async () => {
    const statement = recordingStatement<number>();
    const batcher = new StatementBatcher(statement.run);
    const results = Promise.all([1, 2, 3].map((n) => batcher.submit(n)));
    await nextTick();
    statement.answerAll();
    expect(await results).toEqual(['done 1', 'done 2', 'done 3']);
    expect(statement.batches).toEqual([[1, 2, 3]]);
  });

  it('gathers calls made while statements are in flight into the next one, up to maxInFlight on the wire', async () => {
    const statement = recordingStatement<number>();
    const batcher = new StatementBatcher(statement.run, { maxInFlight: 1 });
    const first = batcher.submit(1);
    await nextTick();
    const later = [2, 3, 4].map((n) => batcher.submit(n));
    await nextTick();
    expect(statement.batches).toEqual([[1]]); // 2-4 wait: one statement is already on the wire
    statement.answerAll();
    await first;
    await nextTick(); // the finished statement frees its slot...
    await nextTick(); // ...and the waiting calls go out
    expect(statement.batches).toEqual([[1], [2, 3, 4]]);
    statement.answerAll();
    expect(await Promise.all(later)).toEqual(['done 2', 'done 3', 'done 4']);
  });

  it('with lingerMs, a lone call waits for others to share its statement, then goes', async () => {
    const statement = recordingStatement<number>();
    const batcher = new StatementBatcher(statement.run, { lingerMs: 300 });
    const all = [batcher.submit(1)];
    await new Promise((resolve) => setTimeout(resolve, 10));
    all.push(batcher.submit(2));
    await nextTick();
    expect(statement.batches).toEqual([]); // 1 lingers, and 2 joins it
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(statement.batches).toEqual([[1, 2]]);
    statement.answerAll();
    expect(await Promise.all(all)).toEqual(['done 1', 'done 2']);
  });

  it('with lingerMs, the linger runs from the oldest call, and a full batch goes at once', async () => {
    const statement = recordingStatement<number>();
    const batcher = new StatementBatcher(statement.run, { lingerMs: 10_000, maxBatch: 3 });
    const all = [1, 2].map((n) => batcher.submit(n));
    await nextTick();
    expect(statement.batches).toEqual([]);
    all.push(batcher.submit(3));
    await nextTick();
    expect(statement.batches).toEqual([[1, 2, 3]]);
    statement.answerAll();
    expect(await Promise.all(all)).toEqual(['done 1', 'done 2', 'done 3']);
  });

  it('with lingerMs, a call made while a statement is on the wire does not linger', async () => {
    const statement = recordingStatement<number>();
    const batcher = new StatementBatcher(statement.run, { lingerMs: 10_000, maxInFlight: 2, maxBatch: 2 });
    const all = [1, 2].map((n) => batcher.submit(n)); // a full batch: on the wire at once
    await nextTick();
    expect(statement.batches).toEqual([[1, 2]]);
    all.push(batcher.submit(3)); // a second slot is free, and a statement is already on the wire
    await nextTick();
    expect(statement.batches).toEqual([[1, 2], [3]]);
    statement.answerAll();
    expect(await Promise.all(all)).toEqual(['done 1', 'done 2', 'done 3']);
  });

  it('without lingerMs, calls of different ticks go in separate statements', async () => {
    const statement = recordingStatement<number>();
    const batcher = new StatementBatcher(statement.run, { maxInFlight: 2 });
    const first = batcher.submit(1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = batcher.submit(2);
    await nextTick();
    expect(statement.batches).toEqual([[1], [2]]);
    statement.answerAll();
    expect(await Promise.all([first, second])).toEqual(['done 1', 'done 2']);
  });

  it('splits at maxBatch', async () => {
    const statement = recordingStatement<number>();
    const batcher = new StatementBatcher(statement.run, { maxBatch: 2, maxInFlight: 3 });
    const all = Promise.all([1, 2, 3, 4, 5].map((n) => batcher.submit(n)));
    await nextTick();
    expect(statement.batches).toEqual([[1, 2], [3, 4], [5]]);
    statement.answerAll();
    await all;
  });

  it("rejects every call of a failed batch with the statement's error, and carries on with the next", async () => {
    let fail = true;
    const batcher = new StatementBatcher(async (items: number[]) => {
      if (fail) throw new Error('connection lost');
      return items.map((n) => n * 10);
    });
    const failed = [1, 2].map((n) => batcher.submit(n));
    for (const call of failed) await expect(call).rejects.toThrow('connection lost');
    fail = false;
    expect(await batcher.submit(3)).toBe(30);
  });

  it('rejects a batch whose statement answered the wrong number of results', async () => {
    const batcher = new StatementBatcher(async (items: number[]) => items.slice(1));
    await expect(batcher.submit(1)).rejects.toThrow('answered 0 results for 1 items');
  });
});
