import net from 'node:net';

import { MAX_URL_LENGTH } from '../db/claim-order';
import { type DestinationPolicy, refusalFor } from './destination-policy';

export interface PreparedCallback {
  url: URL;
  body: string;
}

export type Preparation = { ok: true; callback: PreparedCallback } | { ok: false; reason: string };

/**
 * Checks an order row and builds the request body, or says why the row can never be delivered. Pure:
 * IP-literal hosts are judged here; names are judged at connect time by the guarded lookup.
 */
export function prepareCallback(
  order: { id: string; callbackUrl: string | null; payload: unknown; poison?: string | null },
  policy: DestinationPolicy,
  maxBodyBytes: number,
): Preparation {
  if (order.poison) return { ok: false, reason: order.poison };
  const raw = order.callbackUrl;
  if (typeof raw !== 'string' || raw.trim() === '') return { ok: false, reason: 'callback_url is empty' };
  if (raw.length > MAX_URL_LENGTH) return { ok: false, reason: `callback_url is longer than ${MAX_URL_LENGTH} characters` };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'callback_url is not a valid URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, reason: `callback_url scheme ${url.protocol.replace(':', '')} is not http or https` };
  }
  if (url.username || url.password) {
    // Credentials in the URL would be sent as Basic auth by some clients and end up in logs: refuse them.
    return { ok: false, reason: 'callback_url carries credentials (user:pass@); use a token in the path or query instead' };
  }
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (policy.allowedPorts && !policy.allowedPorts.has(port)) {
    return { ok: false, reason: `callback_url port ${port} is not allowed (CALLBACK_ALLOWED_PORTS)` };
  }
  // WHATWG URL parsing has already turned 2130706433 and 0x7f.1 into 127.0.0.1.
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host)) {
    const range = refusalFor(host, policy);
    if (range) return { ok: false, reason: `callback_url host ${host} is ${range}, which is not allowed` };
  }
  const payload = order.payload;
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    return { ok: false, reason: 'payload is not a JSON object' };
  }
  const body = JSON.stringify({ orderId: order.id, payload });
  const size = Buffer.byteLength(body);
  if (size > maxBodyBytes)
    return { ok: false, reason: `callback body is ${size} bytes, over the ${maxBodyBytes}-byte limit (MAX_PAYLOAD_BYTES)` };
  return { ok: true, callback: { url, body } };
}
