'use strict';
// A partner endpoint in its own process: answers 200 at once (keep-alive), or never (--never).
// Tells the parent its port over IPC and counts requests. With --record it also keeps when each
// order's first callback arrived (by webhook-id), for the pickup-latency figures.
// --flaky: one order in four (by a hash of its webhook-id) gets a 500 on its first request.
// --mixed: each order has a fate by the same hash: half 200, and a tenth each 410, 404, 500 always,
// 302, and no answer at all.
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
const record = process.argv.includes('--record');
let requests = 0;
/** webhook-id -> arrival, in ms since the epoch with sub-millisecond precision (same clock as the driver). */
const arrivals = new Map();

const server = http.createServer({ keepAlive: true }, (req, res) => {
  requests += 1;
  if (record) {
    const id = req.headers['webhook-id'];
    if (!arrivals.has(id)) arrivals.set(id, performance.timeOrigin + performance.now());
  }
  req.resume();
  if (never) return;
  const status = fate(req.headers['webhook-id']);
  if (status === undefined) return;
  req.on('end', () => {
    res.statusCode = status;
    if (status === 302) res.setHeader('location', 'http://127.0.0.1:9/');
    res.end('ok');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (msg) => {
  if (msg === 'count') process.send({ requests });
  if (msg === 'arrivals') process.send({ arrivals: [...arrivals] });
});
