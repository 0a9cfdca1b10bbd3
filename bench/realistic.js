'use strict';
// Partners as they are: 20 origins, each answer after a lognormal wait (median 40 ms, p99 400 ms), one
// request in 200 never answered within the callback timeout (the sink's --realistic). What bounds a
// callback worker there is not CPU but waiting: Little's law gives the most one can deliver with
// `concurrency` requests in flight, and each scenario is measured against that bound.
const { drain } = require('./drain');
const peers = require('./peers');

const REALISTIC = {
  origins: 20,
  /** Requests in flight per replica, and for the seed loop per replica it stands for. */
  concurrency: 32,
  /** A never-answering request holds its slot this long (2 s, not the default 10 s, to keep runs short). */
  timeoutMs: 2000,
  /**
   * Retries 1 s apart, doubling: with the default schedule one order in thousands that met two
   * never-answered requests would wait 5 minutes for its third attempt, and the drain with it.
   */
  retryBaseMs: 1000,
};
const sink = { realistic: true, ports: REALISTIC.origins };

/**
 * order-callbacks, `replicas` × `start` at REALISTIC.concurrency each; `extra` is added to their
 * environment; `cli`: another build's dist/cli.js to run instead; `sql`: run on the fresh database first.
 * @param {string} [cli]
 * @param {string} [sql]
 */
function daemons(replicas, n, warmup, extra = {}, cli = undefined, sql = undefined) {
  const env = {
    WORKER_CONCURRENCY: String(REALISTIC.concurrency),
    CALLBACK_TIMEOUT_MS: String(REALISTIC.timeoutMs),
    // A lever that sets a schedule replaces the backoff, which cannot be combined with it.
    ...(extra.RETRY_SCHEDULE === undefined && { RETRY_BASE_MS: String(REALISTIC.retryBaseMs) }),
    ...extra,
  };
  return drain(replicas, { n, warmup, env, sink, cli, sql }).then((run) => ({ ...run, concurrency: replicas * REALISTIC.concurrency }));
}

/** The seed loop with as many requests in flight as `replicas` of the daemon have. */
function seedLoop(replicas, n, warmup) {
  const concurrency = replicas * REALISTIC.concurrency;
  return peers.seedLoop(n, warmup, { concurrency, sink, timeoutMs: REALISTIC.timeoutMs }).then((run) => ({ ...run, concurrency }));
}

/** The rate a run held once ramped up, before its stragglers: requests per second at the sink. */
const sustainedRate = (run) => run.partner.sustained;

/**
 * The share of its Little's-law bound a run reached: its sustained request rate over concurrency / mean
 * service time, the service time being what the partner took (its delay, or the whole timeout for a
 * request it never answered), as the sink counted it over the run.
 */
function shareOfLittleBound(run) {
  const { answered, delaySumMs, never } = run.partner;
  const meanServiceSeconds = (delaySumMs + never * REALISTIC.timeoutMs) / (answered + never) / 1000;
  return sustainedRate(run) / (run.concurrency / meanServiceSeconds);
}

module.exports = { REALISTIC, daemons, seedLoop, sustainedRate, shareOfLittleBound };
