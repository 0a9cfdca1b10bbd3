/**
 * `load` shared for `ttlMs`: every caller within that time gets the same promise, the one in flight
 * included, so a burst of scrapes or page loads costs the database one read. A failed load is
 * forgotten at once: an outage must not be served from the cache after the service is back.
 */
export function cachedFor<T>(ttlMs: number, load: () => Promise<T>): () => Promise<T> {
  let entry: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = performance.now();
    if (!entry || now - entry.at > ttlMs) {
      const value = load();
      const current = { at: now, value };
      value.catch(() => {
        if (entry === current) entry = undefined;
      });
      entry = current;
    }
    return entry.value;
  };
}
