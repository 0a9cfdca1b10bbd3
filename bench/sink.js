'use strict';
// A partner endpoint in its own process: answers 200 at once (keep-alive), or never (--never).
// Tells the parent its port over IPC and counts requests. With --record it also keeps when each
// order's first callback arrived (by webhook-id), for the pickup-latency figures.
const http = require('node:http');

const never = process.argv.includes('--never');
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
  req.on('end', () => res.end('ok'));
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (msg) => {
  if (msg === 'count') process.send({ requests });
  if (msg === 'arrivals') process.send({ arrivals: [...arrivals] });
});
