import { createHmac, timingSafeEqual } from 'node:crypto';

import { keyOfSecret } from '../delivery/sign';
import { WebhookVerificationError } from '../errors/webhook-verification-error';

export interface VerifyOptions {
  /** How far webhook-timestamp may be from now, either way. @defaultValue 300 (the spec's five minutes) */
  toleranceSeconds?: number;
  /** Unix seconds; injectable for tests. */
  nowSeconds?: number;
}

type Headers = Record<string, string | string[] | undefined>;

/**
 * What a partner should do with each callback before trusting it, per the Standard Webhooks spec:
 * check the timestamp is within tolerance (replays), and that one of the listed `v1,` signatures is
 * the HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<raw body>" under one of the partner's
 * secrets (several while a secret is being rotated), compared in constant time. Returns the parsed
 * body; throws WebhookVerificationError otherwise. `rawBody` must be the bytes as received.
 *
 * Not a wrapper over the `standardwebhooks` package: its verify() (1.1 to 1.3) reads Date.now() against a fixed
 * five minutes, so it cannot take `nowSeconds` or `toleranceSeconds`, and it checks one secret at a time;
 * the unit tests hold the two to the same answers.
 */
export function verifyWebhook(
  secrets: string | string[],
  headers: Headers,
  rawBody: string | Buffer,
  options: VerifyOptions = {},
): unknown {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature');
  if (!/^\d+$/.test(timestamp)) throw new WebhookVerificationError('webhook-timestamp is not unix seconds');
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  if (Math.abs(now - Number(timestamp)) > tolerance) throw new WebhookVerificationError('webhook-timestamp is outside the tolerance');

  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody)]);
  const expected = (Array.isArray(secrets) ? secrets : [secrets]).map((secret) =>
    createHmac('sha256', keyOfSecret(secret)).update(signed).digest(),
  );
  const offered = signatures
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  const match = offered.some((candidate) => expected.some((mac) => candidate.length === mac.length && timingSafeEqual(candidate, mac)));
  if (!match) throw new WebhookVerificationError('no matching signature');
  try {
    return JSON.parse(signed.subarray(Buffer.byteLength(`${id}.${timestamp}.`)).toString('utf8'));
  } catch {
    throw new WebhookVerificationError('body is not JSON');
  }
}

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name] ?? headers[name.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase())];
  return Array.isArray(value) ? value[0] : value;
}
