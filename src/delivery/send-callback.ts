import type { Agent } from 'undici';
import type { Readable } from 'node:stream';
import { parseRetryAfter } from './backoff';
import type { HttpAnswer } from './classify';
import { signPayload } from './sign';

export interface SignedRequest {
  url: URL;
  body: string;
  /** The partner's idempotency key: the same on every request for the same order. */
  webhookId: string;
  /** One signature per key, space-separated: more than one while a partner's secret is rotated. */
  signingKeys: Buffer[];
}

/** How much of an error response is kept for last_error. The rest is discarded. */
const SNIPPET_BYTES = 512;

/**
 * POSTs one signed callback and returns the partner's answer. Throws on network errors and when
 * `signal` aborts (timeout, lost claim, shutdown); the caller classifies those.
 */
export async function sendCallback(client: Agent, request: SignedRequest, signal: AbortSignal): Promise<HttpAnswer> {
  const timestamp = Math.floor(Date.now() / 1000);
  const response = await client.request({
    origin: request.url.origin,
    path: `${request.url.pathname}${request.url.search}`,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'order-callbacks',
      'webhook-id': request.webhookId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': request.signingKeys.map((key) => signPayload(key, request.webhookId, timestamp, request.body)).join(' '),
    },
    body: request.body,
    signal,
  });
  const ok = response.statusCode >= 200 && response.statusCode < 300;
  const bodySnippet = ok ? undefined : await readSnippet(response.body);
  if (ok) await discardBody(response.body);
  const retryAfter = response.headers['retry-after'];
  return {
    status: response.statusCode,
    retryAfterMs: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter),
    bodySnippet,
  };
}

/** How much of a 2xx body is read (so the connection can be reused) before it is cut off. */
const DISCARD_LIMIT_BYTES = 64 * 1024;
const DISCARD_TIMEOUT_MS = 1000;

/**
 * A 2xx means delivered, whatever follows: the body is drained a little for keep-alive's sake, and a
 * body that is huge, slow or never ends is cut off (its socket closed) rather than waited for.
 */
async function discardBody(body: { dump(opts: { limit: number }): Promise<void>; destroy(): void }): Promise<void> {
  // A plain timer, not AbortSignal.timeout: this runs once per callback, and a timeout signal costs a
  // timer, a signal and a listener each time, measurably so at thousands per second.
  const cutOff = setTimeout(() => body.destroy(), DISCARD_TIMEOUT_MS);
  try {
    await body.dump({ limit: DISCARD_LIMIT_BYTES });
  } catch {
    body.destroy();
  } finally {
    clearTimeout(cutOff);
  }
}

/** The first bytes of a body as one printable line; then the body is dropped, not read to the end. */
async function readSnippet(body: Readable & { dump(opts?: { limit: number }): Promise<void> }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= SNIPPET_BYTES) break;
    }
  } catch {
    // A body that breaks off is still an answer; the status says what we need.
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks)
    .subarray(0, SNIPPET_BYTES)
    .toString('utf8')
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[^\x20-\x7e\u00a0-\uffff]/g, '')
    .trim();
}
