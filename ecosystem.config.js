// PM2 process file. `pm2 start ecosystem.config.js --only order-callbacks` runs N replicas of `start`
// (producer + workers). For a split deployment run the other two apps instead:
//   pm2 start ecosystem.config.js --only order-callbacks-producer,order-callbacks-worker
// Settings come from the environment of the `pm2 start` call (DATABASE_URL, REDIS_URL, CALLBACK_SECRET...).
'use strict';

const positive = (value, fallback) => (Number.parseInt(value, 10) > 0 ? Number.parseInt(value, 10) : fallback);

const path = require('node:path');
const logDir = process.env.ORDER_CALLBACKS_LOG_DIR || path.join(__dirname, 'logs');
const instances = positive(process.env.ORDER_CALLBACKS_INSTANCES, 2);
const callbackTimeoutMs = positive(process.env.CALLBACK_TIMEOUT_MS, 10_000);
// The daemon's own default: callbacks in flight get the callback timeout plus a margin to finish.
const graceMs = positive(process.env.SHUTDOWN_GRACE_MS, callbackTimeoutMs + 5_000);

/** What every app shares. */
const common = {
  script: 'dist/cli.js',
  cwd: __dirname,
  // Fork mode: the daemon serves no shared port, so cluster mode's load balancer has nothing to do; each
  // replica is a plain process that PM2 can stop one at a time on reload.
  exec_mode: 'fork',
  // Start is "up" only when the process says `ready`: it does so once Postgres and Redis answer.
  wait_ready: true,
  listen_timeout: 60_000,
  // PM2 must never SIGKILL a replica that is still finishing callbacks: wait longer than the grace period.
  kill_timeout: graceMs + 5_000,
  kill_signal: 'SIGTERM',
  max_memory_restart: process.env.ORDER_CALLBACKS_MAX_MEMORY || '512M',
  // A crash loop (bad config, no database) backs off instead of spinning.
  exp_backoff_restart_delay: 200,
  // With METRICS_PORT set, each replica serves /metrics on its own port: METRICS_PORT, +1, +2...
  ...(process.env.METRICS_PORT ? { increment_var: 'METRICS_PORT' } : {}),
  // pino lines carry their own time; a PM2 prefix would break them as JSON.
  time: false,
  merge_logs: false,
  // One file per replica (PM2 appends the instance id), pino JSON lines as written.
  out_file: path.join(logDir, 'order-callbacks.out.log'),
  error_file: path.join(logDir, 'order-callbacks.err.log'),
};

module.exports = {
  apps: [
    { ...common, name: 'order-callbacks', args: 'start', instances },
    { ...common, name: 'order-callbacks-producer', args: 'producer', instances: 1 },
    { ...common, name: 'order-callbacks-worker', args: 'worker', instances },
  ],
};
