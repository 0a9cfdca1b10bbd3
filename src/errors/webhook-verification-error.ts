/** A callback request that does not prove it came from us (bad or missing signature, stale timestamp). */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}
