/**
 * A callback was about to be written after its order's claim had (nearly) run out: the process was
 * paused between the claim and the request (a SIGSTOP, a VM pause, a long GC). Not sent; another worker
 * may hold the order by now.
 */
export class ClaimLapsedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClaimLapsedError';
  }
}
