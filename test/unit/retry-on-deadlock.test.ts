import { retryOnDeadlock } from '../../src/db/batching/retry-on-deadlock';

const failing = (codes: (string | undefined)[]) => {
  let calls = 0;
  const statement = async () => {
    const code = codes[calls++];
    if (code === undefined) return `ok after ${calls}`;
    throw Object.assign(new Error(`code ${code}`), { code });
  };
  return { statement, calls: () => calls };
};

describe('retryOnDeadlock', () => {
  it('runs a deadlock victim or a serialization failure again', async () => {
    const s = failing(['40P01', '40001']);
    expect(await retryOnDeadlock(s.statement)).toBe('ok after 3');
  });

  it('gives up after three tries, and never retries other errors', async () => {
    const victim = failing(['40P01', '40P01', '40P01', '40P01']);
    await expect(retryOnDeadlock(victim.statement)).rejects.toThrow('code 40P01');
    expect(victim.calls()).toBe(3);
    const broken = failing(['23505']);
    await expect(retryOnDeadlock(broken.statement)).rejects.toThrow('code 23505');
    expect(broken.calls()).toBe(1);
  });
});
