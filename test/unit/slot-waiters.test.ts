import { SlotWaiters } from '../../src/delivery/slot-waiters';

const A = 'https://a.example';
const B = 'https://b.example';

describe('SlotWaiters', () => {
  it('wakes the first in line of that partner only, when one of its callbacks ends', async () => {
    const waiters = new SlotWaiters(5);
    const never = new AbortController().signal;
    const woken: string[] = [];
    const first = waiters.wait(A, 10_000, never).then((freed) => woken.push(`a1 ${freed}`));
    const second = waiters.wait(A, 10_000, never).then((freed) => woken.push(`a2 ${freed}`));
    const other = waiters.wait(B, 50, never).then((freed) => woken.push(`b ${freed}`));
    waiters.freed(A);
    await first;
    expect(woken).toEqual(['a1 true']);
    waiters.freed(A);
    await Promise.all([second, other]);
    expect(woken).toEqual(['a1 true', 'a2 true', 'b false']); // B's wait ran out: nothing of B's ended
  });

  it('gives up at the timeout, at once when the line is full, and on shutdown', async () => {
    const waiters = new SlotWaiters(1);
    const shutdown = new AbortController();
    const waiting = waiters.wait(A, 10_000, shutdown.signal);
    expect(await waiters.wait(A, 10_000, shutdown.signal)).toBe(false); // the line holds one
    expect(await waiters.wait(B, 20, shutdown.signal)).toBe(false);
    shutdown.abort();
    expect(await waiting).toBe(false);
    expect(await waiters.wait(A, 10_000, shutdown.signal)).toBe(false);
    waiters.freed(A); // nobody waiting: nothing happens
  });
});
