import net from 'node:net';
import { forbiddenRange } from './address-guard';

export interface PreparedCallback {
  url: URL;
  body: string;
}

export type Preparation = { ok: true; callback: PreparedCallback } | { ok: false; reason: string };

const MAX_URL_LENGTH = 2048;

/**
 * Checks an order row and builds the request body, or says why the row can never be delivered. Pure:
 * IP-literal hosts are judged here; names are judged at connect time by the guarded lookup.
 */
export function prepareCallback(
  order: { id: string; callbackUrl: string | null; payload: unknown },
  allowPrivate: boolean,
): Preparation {
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
  if (!allowPrivate) {
    // WHATWG URL parsing has already turned 2130706433 and 0x7f.1 into 127.0.0.1.
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (net.isIP(host)) {
      const range = forbiddenRange(host);
      if (range) return { ok: false, reason: `callback_url host ${host} is ${range}, which is not allowed` };
    }
  }
  const payload = order.payload;
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    return { ok: false, reason: 'payload is not a JSON object' };
  }
  return { ok: true, callback: { url, body: JSON.stringify({ orderId: order.id, payload }) } };
}
