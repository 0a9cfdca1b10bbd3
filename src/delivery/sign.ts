import { createHmac, randomBytes } from 'node:crypto';

/**
 * Standard Webhooks signature: base64 HMAC-SHA256 over "<id>.<timestamp>.<body>", as `v1,<sig>`.
 * The body must be signed exactly as sent, byte for byte.
 */
export function signPayload(key: Buffer, webhookId: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', key).update(`${webhookId}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The HMAC key in a Standard Webhooks secret: the base64 after `whsec_` (the prefix is optional here). */
export function keyOfSecret(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

/** A fresh secret in the Standard Webhooks format: 24 random bytes. */
export function generateSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}
