import { randomUUID } from 'node:crypto';

import { type BackgroundLoop, startBackgroundLoop } from '../background-loop';
import type { Db } from '../db/connection';
import { endMaintenanceTurn, takeMaintenanceTurn } from '../db/maintenance';
import { countOrders } from '../db/reports/order-counts';
import { storeOrderGauges } from '../db/reports/order-gauges';
import type { Logger } from './logger';

/** The task's name in maintenance_turns. */
export const ORDER_GAUGES_TURN = 'order-gauges';
/** How often one replica (of all) computes the order gauges: how old a scrape's order gauges may be. */
export const ORDER_GAUGES_EVERY_MS = 5000;
/** The turn's hold: outlives the computation (three statements on indexes and statistics). */
const HOLD_MS = 30_000;
/** The next turn may start this much before ORDER_GAUGES_EVERY_MS has passed, so that the loop's tick finds it due. */
const TURN_SLACK_MS = 500;

export type RefreshOutcome = 'refreshed' | 'notOurTurn' | 'turnLost';

/** Computes the order gauges and stores them in order_gauges, if it is this replica's turn. */
export async function refreshOrderGauges(db: Db, holder: string): Promise<RefreshOutcome> {
  const turn = { name: ORDER_GAUGES_TURN, token: randomUUID() };
  if (!(await takeMaintenanceTurn(db, turn, holder, ORDER_GAUGES_EVERY_MS - TURN_SLACK_MS, HOLD_MS))) return 'notOurTurn';
  try {
    return (await storeOrderGauges(db, turn, await countOrders(db))) ? 'refreshed' : 'turnLost';
  } finally {
    await endMaintenanceTurn(db, turn);
  }
}

/** Every replica that serves /metrics runs this loop; one of them computes per interval. */
export function startOrderGaugesRefresh(options: { db: Db; holder: string; logger: Logger }): BackgroundLoop {
  return startBackgroundLoop({
    name: 'order gauges',
    intervalMs: ORDER_GAUGES_EVERY_MS,
    logger: options.logger,
    runOnce: async () => {
      await refreshOrderGauges(options.db, options.holder);
    },
  });
}
