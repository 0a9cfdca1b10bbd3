'use strict';
// A partner endpoint in its own process: answers 200 at once (keep-alive), or never (--never).
// Tells the parent its port over IPC and counts requests. With --record it also keeps when each
// order's first callback arrived (by webhook-id), for the pickup-latency figures.
// --flaky: one order in four (by a hash of its webhook-id) gets a 500 on its first request.
// --mixed: each order has a fate by the same hash: half 200, and a tenth each 410, 404, 500 always,
// 302, and no answer at all.
// --realistic: each request waits a lognormal time (median 40 ms, p99 400 ms) before its 200, and one in
// 200 is never answered. --ports N listens on N ports (N partner origins), all answering alike.
const crypto = require('node:crypto');
const http = require('node:http');

const never = process.argv.includes('--never');
const flaky = process.argv.includes('--flaky');
const mixed = process.argv.includes('--mixed');
const bucket = (id, of) => crypto.createHash('sha256').update(String(id)).digest()[0] % of;
const seen = new Map();
/** The status to answer with, or undefined for no answer. */
function fate(id) {
  if (flaky) {
    const tries = (seen.get(id) ?? 0) + 1;
    seen.set(id, tries);
    return bucket(id, 4) === 0 && tries === 1 ? 500 : 200;
  }
  if (mixed) return [200, 200, 200, 200, 200, 410, 404, 500, 302, undefined][bucket(id, 10)];
  return 200;
}
const realistic = process.argv.includes('--realistic');
const portsArg = process.argv.indexOf('--ports');
const portCount = portsArg > 0 ? Number(process.argv[portsArg + 1]) : 1;
const MEDIAN_MS = 40;
// p99 = median × e^(2.326 σ): 400 ms for a 40 ms median.
const SIGMA = Math.log(400 / MEDIAN_MS) / 2.3263;
const NEVER_SHARE = 0.005;
/** A lognormal delay (Box–Muller). */
const latencyMs = () => MEDIAN_MS * Math.exp(SIGMA * Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random()));
/** What a realistic partner did: requests answered, their delays summed, requests never answered. */
const partner = { answered: 0, delaySumMs: 0, never: 0 };
const record = process.argv.includes('--record');
let requests = 0;
/** When each request arrived (performance.now(), ms), for the sustained rate between two moments. */
const arrivedAt = [];
/** webhook-id -> arrival, in ms since the epoch with sub-millisecond precision (same clock as the driver). */
const arrivals = new Map();

function answer(req, res) {
  requests += 1;
  arrivedAt.push(performance.now());
  if (record) {
    const id = req.headers['webhook-id'];
    if (!arrivals.has(id)) arrivals.set(id, performance.timeOrigin + performance.now());
  }
  req.resume();
  if (never) return;
  if (realistic) {
    if (Math.random() < NEVER_SHARE) {
      partner.never += 1;
      return;
    }
    const delay = latencyMs();
    partner.answered += 1;
    partner.delaySumMs += delay;
    req.on('end', () => setTimeout(() => res.end('ok'), delay));
    return;
  }
  const status = fate(req.headers['webhook-id']);
  if (status === undefined) return;
  req.on('end', () => {
    res.statusCode = status;
    if (status === 302) res.setHeader('location', 'http://127.0.0.1:9/');
    res.end('ok');
  });
}

/** One server per port, every one answering alike; resolves with its port. */
function listen() {
  const server = http.createServer({ keepAlive: true }, answer);
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(/** @type {import('node:net').AddressInfo} */ (server.address()).port)),
  );
}

/**
 * To the bench that forked this process.
 * @param {object} message
 */
const send = (message) => /** @type {NonNullable<typeof process.send>} */ (process.send)(message);

// listen() never rejects: a port that cannot be had is an 'error' event, which ends the process.
void Promise.all(Array.from({ length: portCount }, listen)).then((ports) => send({ port: ports[0], ports }));
process.on('message', (/** @type {any} */ msg) => {
  if (msg === 'count') send({ requests, ...partner });
  // The requests per second between the 10th and the 90th percentile of the arrivals since request
  // number `since`: the rate held once work has ramped up, before the last stragglers.
  if (msg?.sustainedSince !== undefined) {
    const times = arrivedAt.slice(msg.sustainedSince);
    const at = (q) => times[Math.floor(q * (times.length - 1))];
    const span = (at(0.9) - at(0.1)) / 1000;
    send({ sustained: span > 0 ? (Math.floor(0.9 * (times.length - 1)) - Math.floor(0.1 * (times.length - 1))) / span : NaN });
  }
  if (msg === 'arrivals') send({ arrivals: [...arrivals] });
});
