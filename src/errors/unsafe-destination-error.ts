/**
 * The callback would reach an address we refuse to send to (loopback, private, link-local...).
 * Permanent: retrying cannot make the address acceptable, so the order fails at once.
 */
export class UnsafeDestinationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafeDestinationError';
  }
}
