/**
 * The partner's idempotency key (webhook-id) for an order: derived from the order id alone, so every
 * request for the same order carries the same value, whichever worker or replica sends it.
 */
export function webhookIdFor(orderId: string): string {
  return `order-${orderId}`;
}
