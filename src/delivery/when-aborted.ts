/**
 * Per signal, what to run when it aborts, behind one listener. The worker's shutdown signal is shared
 * by every callback in flight and every attempt waiting for a partner's slot; a listener of each one's
 * own on it, added and removed per callback, cost several µs of CPU per callback
 * (docs/decisions/0001-callbacks-through-undici-dispatch.md): EventTarget is slow to add to and to remove from.
 */
const runOnAbort = new WeakMap<AbortSignal, Set<() => void>>();

/** Runs `run` once when `signal` aborts (at once if it has). Returns how to take it back. */
export function whenAborted(signal: AbortSignal, run: () => void): () => void {
  let members = runOnAbort.get(signal);
  if (!members) {
    const created = new Set<() => void>();
    signal.addEventListener(
      'abort',
      () => {
        // Live iteration: a member taken back meanwhile is skipped, as a removed listener would be.
        for (const member of created) {
          try {
            member();
          } catch (err) {
            queueMicrotask(() => {
              throw err; // one member's error must not keep the rest from running
            });
          }
        }
        created.clear();
      },
      { once: true },
    );
    runOnAbort.set(signal, created);
    members = created;
  }
  if (signal.aborted) {
    run();
    return () => undefined;
  }
  members.add(run);
  return () => members.delete(run);
}
