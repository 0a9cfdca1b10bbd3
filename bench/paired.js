'use strict';
// Scenarios measured in rounds: each round runs every scenario once, back to back, from the same state,
// in alternating order (ABBA for two), so a comparison is made of pairs from the same minutes.
const { compareRatios, meanWithInterval, roundOrders } = require('./stats');

/**
 * Runs `count` rounds of `scenarios` ({ name: () => result }), calling `settle()` before every run.
 * Answers { rounds, orders, runs: { name: [result per round] } }.
 */
async function inRounds(title, scenarios, count, settle) {
  const names = Object.keys(scenarios);
  const runs = Object.fromEntries(names.map((name) => [name, /** @type {unknown[]} */ ([])]));
  const orders = roundOrders(names, count);
  for (const [round, order] of orders.entries()) {
    process.stdout.write(`${title}: round ${round + 1} of ${count}... `);
    for (const name of order) {
      await settle();
      runs[name][round] = await scenarios[name]();
    }
    console.log('done');
  }
  return { rounds: count, orders, runs };
}

/**
 * A/B of one figure over the rounds: `figure(run)` of A over that of B, round by round. `figureOfB`,
 * when given, is what B's run is turned into instead (a goal's allowance made of B's figure).
 */
function compare(measuredRounds, a, b, figure, figureOfB = figure) {
  const { runs } = measuredRounds;
  const { ratios, ...result } = compareRatios(runs[a].map((run, round) => [figure(run), figureOfB(runs[b][round])]));
  return { a, b, ...result, ratios };
}

/** One figure of one scenario over the rounds: its mean and interval. */
function summarise(measuredRounds, name, figure) {
  return meanWithInterval(measuredRounds.runs[name].map(figure));
}

const cpuPerOrder = (run) => run.cpuSecondsPer1k;
const throughput = (run) => run.ordersPerSecond;
const drainSeconds = (run) => run.seconds;

module.exports = { inRounds, compare, summarise, cpuPerOrder, throughput, drainSeconds };
