// PM2 process file. Start ONE of the two deployments, never both against the same queue:
//
//   pm2 start ecosystem.config.js --only order-callbacks
//       N replicas of `start` (producer + workers in each). The usual choice.
//   pm2 start ecosystem.config.js --only order-callbacks-producer,order-callbacks-worker
//       split: one producer process and N worker processes, for scaling workers on their own.
//
// A plain `pm2 start ecosystem.config.js` would start all three apps: harmless (producers take turns
// through a lease in Postgres, workers share the queue) but twice the processes you meant.
//
// Settings come from the environment of the `pm2 start` call (DATABASE_URL, REDIS_URL, CALLBACK_SECRET...),
// e.g. `set -a; . ./.env; set +a; pm2 start ecosystem.config.js --only order-callbacks`.
// `pm2 reload order-callbacks` restarts the replicas one at a time (rolling), thanks to wait_ready.
'use strict';

const path = require('node:path');

const positive = (value, fallback) => (Number.parseInt(value, 10) > 0 ? Number.parseInt(value, 10) : fallback);

// The daemon's own code decides how long a graceful stop may take (its grace period, from its config,
// and what follows it), so PM2 and the daemon cannot disagree: PM2 must never SIGKILL a replica that is
// writing its hand-backs. The app runs from dist/ anyway.
let daemon;
try {
  daemon = { config: require('./dist/config'), shutdown: require('./dist/shutdown-budget') };
} catch (err) {
  throw new Error(`order-callbacks: build it first (npm ci && npm run build): ${/** @type {Error} */ (err).message}`);
}
const { shutdownGraceMs } = daemon.config.loadConfig(process.env);

// Relative to this file, so `pm2 start` from any directory writes to the same place.
const logDir = path.resolve(__dirname, process.env.ORDER_CALLBACKS_LOG_DIR || 'logs');
const instances = positive(process.env.ORDER_CALLBACKS_INSTANCES, 2);
// With METRICS_PORT = P, every process gets a port of its own, even with all three apps started:
// `start` replicas P .. P+n-1, the producer P+n, the workers P+n+1 .. P+2n.
const metricsBase = positive(process.env.METRICS_PORT, undefined);

/** One PM2 app running `node dist/cli.js <command>`; its processes' metrics ports start `portOffset` above P. */
function app(name, command, count, portOffset) {
  return {
    name,
    script: 'dist/cli.js',
    args: command,
    cwd: __dirname,
    instances: count,
    // Fork mode, with instances: PM2 starts `count` independent processes. Cluster mode would put them
    // behind Node's cluster module to share a listening port, and the daemon listens on no shared port
    // (with METRICS_PORT each replica gets its own, below), so it would add only an IPC layer.
    exec_mode: 'fork',
    // A replica counts as started only when it sends `ready`, once Postgres and Redis answer. This is
    // what makes `pm2 reload` rolling: the next replica is stopped only after this one is ready.
    wait_ready: true,
    // After this long without `ready`, PM2 counts the replica as started anyway and moves on; the
    // replica keeps waiting for its services by itself (it logs while it does).
    listen_timeout: 60_000,
    // PM2 must never SIGKILL a replica that is still finishing callbacks or writing their hand-backs:
    // longer than the daemon's own deadline for a stop (which it enforces itself).
    kill_signal: 'SIGTERM',
    kill_timeout: daemon.shutdown.killTimeoutMs(shutdownGraceMs),
    // A slow leak restarts the replica (gracefully) instead of growing until the OOM killer picks it.
    max_memory_restart: process.env.ORDER_CALLBACKS_MAX_MEMORY || '512M',
    // A crash loop (bad config, no database) backs off instead of spinning.
    exp_backoff_restart_delay: 200,
    // PM2 counts increment_var up from the app's own env, per app: the offsets keep the apps apart.
    ...(metricsBase ? { increment_var: 'METRICS_PORT', env: { METRICS_PORT: String(metricsBase + portOffset) } } : {}),
    // pino lines carry their own time; PM2's timestamp prefix would stop them from being JSON.
    time: false,
    // One file per process (PM2 appends its id), so each replica's pino lines stay whole and in order.
    merge_logs: false,
    out_file: path.join(logDir, `${name}.out.log`),
    error_file: path.join(logDir, `${name}.err.log`),
  };
}

module.exports = {
  apps: [
    app('order-callbacks', 'start', instances, 0),
    // One producer is enough: only one enqueues at a time anyway (a lease), PM2 restarts it if it
    // dies, and a `start` or a second producer would take over the same way.
    app('order-callbacks-producer', 'producer', 1, instances),
    app('order-callbacks-worker', 'worker', instances, instances + 1),
  ],
};
