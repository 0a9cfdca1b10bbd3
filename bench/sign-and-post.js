'use strict';
// The HTTP half of a callback as the ceilings and the peers send it: the daemon's body shape, Standard
// Webhooks headers, one keep-alive pool per origin (undici), the answer read and dropped.
const crypto = require('node:crypto');
const { Agent } = require('undici');

const KEY = crypto.randomBytes(24);

/**
 * `timeoutMs`: how long to wait for an answer's headers, then for its body (undici's default without).
 * @param {{ timeoutMs?: number }} [options]
 */
function createPoster({ timeoutMs } = {}) {
  const agent = new Agent({ keepAliveTimeout: 30_000, ...(timeoutMs ? { headersTimeout: timeoutMs, bodyTimeout: timeoutMs } : {}) });
  return {
    /** POSTs the callback for one order; throws unless the sink answered 2xx. */
    async post(url, orderId, payload) {
      const body = JSON.stringify({ orderId: String(orderId), payload });
      const id = `order-${orderId}`;
      const timestamp = Math.floor(Date.now() / 1000);
      const signature = crypto.createHmac('sha256', KEY).update(`${id}.${timestamp}.${body}`).digest('base64');
      const target = new URL(url);
      const response = await agent.request({
        origin: target.origin,
        path: target.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': `v1,${signature}`,
        },
        body,
      });
      await response.body.dump();
      if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`sink answered ${response.statusCode}`);
    },
    close: () => agent.close(),
  };
}

/** Runs `work(i)` for i in [0, n) with at most `concurrency` at once. */
async function inParallel(n, concurrency, work) {
  let next = 0;
  const lane = async () => {
    while (next < n) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
}

module.exports = { createPoster, inParallel };
