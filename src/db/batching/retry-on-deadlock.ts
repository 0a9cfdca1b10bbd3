/** Postgres' codes for "this transaction lost a lock conflict and was rolled back; run it again". */
const RETRYABLE = new Set(['40P01', '40001']);
const ATTEMPTS = 3;

/**
 * Runs a statement again when Postgres rolled it back as a deadlock victim (or a serialization
 * failure). Batched statements lock rows in id order, but other writers (the order system, an admin)
 * need not; a lost batch would otherwise fail every attempt in it.
 */
export async function retryOnDeadlock<T>(statement: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (attempt >= ATTEMPTS || typeof code !== 'string' || !RETRYABLE.has(code)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 5 * attempt + Math.random() * 20));
    }
  }
}
