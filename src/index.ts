/**
 * The package's library side, for partners and tests: sign and verify callbacks the way the daemon
 * does. The daemon itself is the `order-callbacks` command (dist/cli.js).
 */
export { signPayload } from './delivery/sign';
export { WebhookVerificationError } from './errors/webhook-verification-error';
export { type VerifyOptions, verifyWebhook } from './verify/verify-webhook';
