/**
 * Another transaction held an order's row for longer than a finish may wait. Retryable: the write was
 * not made, and the caller may try again or let the claim run out.
 */
export class RowBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RowBusyError';
  }
}
