'use strict';
// A partner endpoint in its own process: answers 200 at once (keep-alive), or never (--never).
// Tells the parent its port over IPC and counts requests.
const http = require('node:http');

const never = process.argv.includes('--never');
let requests = 0;
const server = http.createServer({ keepAlive: true }, (req, res) => {
  requests += 1;
  req.resume();
  if (never) return;
  req.on('end', () => res.end('ok'));
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (msg) => {
  if (msg === 'count') process.send({ requests });
});
