import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { type BackgroundLoop, startBackgroundLoop } from '../background-loop';
import type { Db } from '../db/connection';
import { deleteOldDeliveryLog, endMaintenanceTurn, extendMaintenanceTurn, takeMaintenanceTurn } from '../db/maintenance';
import type { Logger } from '../observability/logger';

/** The task's name in maintenance_turns. */
export const RETENTION_TURN = 'delivery-log-retention';
/** How often one replica (of all) deletes what passed the retention. */
export const RETENTION_EVERY_MS = 60_000;
/** Rows one statement deletes at most: each is a short transaction that locks only these rows. */
export const RETENTION_BATCH_SIZE = 1000;
/** Between two batches: leaves room to vacuum, replication and the delivery's own writes. */
const BATCH_PAUSE_MS = 100;
/**
 * Batches of one run at most: a run ends, and the turn passes on, in bounded time. A run that stopped
 * with rows left makes the next turn due at once, so a backlog is deleted run after run, not 100,000
 * rows a minute.
 */
const MAX_BATCHES_PER_RUN = 100;
/** The turn's hold, renewed before each batch: must outlive one batch (a statement, at most its timeout). */
const HOLD_MS = 60_000;
/** The next turn may start this much before RETENTION_EVERY_MS has passed, so that the loop's tick finds it due. */
const TURN_SLACK_MS = 1000;

export type RetentionOutcome = 'caughtUp' | 'moreLeft' | 'notOurTurn' | 'turnLost' | 'stopped';

export interface RetentionOptions {
  db: Db;
  /** Who runs it, for people (host:pid). */
  holder: string;
  /** DELIVERY_LOG_RETENTION_DAYS: rows that started longer ago go. */
  days: number;
  batchSize?: number;
  pauseMs?: number;
  signal?: AbortSignal;
}

/**
 * One run of the retention, if it is this replica's turn: batches of at most `batchSize` oldest rows
 * past the retention, a pause between them, until a batch finds fewer (caught up), MAX_BATCHES_PER_RUN
 * have run (the rest waits for the next turn), the turn is lost or `signal` stops it.
 */
export async function runDeliveryLogRetention(options: RetentionOptions): Promise<{ outcome: RetentionOutcome; deleted: number }> {
  const { db, holder, days, batchSize = RETENTION_BATCH_SIZE, pauseMs = BATCH_PAUSE_MS, signal } = options;
  const turn = { name: RETENTION_TURN, token: randomUUID() };
  if (!(await takeMaintenanceTurn(db, turn, holder, RETENTION_EVERY_MS - TURN_SLACK_MS, HOLD_MS)))
    return { outcome: 'notOurTurn', deleted: 0 };
  let deleted = 0;
  let outcome: RetentionOutcome = 'moreLeft';
  try {
    for (let batch = 0; batch < MAX_BATCHES_PER_RUN; batch += 1) {
      if (signal?.aborted) return { outcome: (outcome = 'stopped'), deleted };
      if (batch > 0) {
        await sleep(pauseMs, undefined, { signal }).catch(() => undefined);
        if (signal?.aborted) return { outcome: (outcome = 'stopped'), deleted };
        if (!(await extendMaintenanceTurn(db, turn, HOLD_MS))) return { outcome: (outcome = 'turnLost'), deleted };
      }
      const n = await deleteOldDeliveryLog(db, turn, days, batchSize);
      deleted += n;
      if (n < batchSize) return { outcome: (outcome = 'caughtUp'), deleted };
    }
    return { outcome, deleted };
  } finally {
    await endMaintenanceTurn(db, turn, outcome === 'moreLeft');
  }
}

/** The retention as a background loop of the daemon; stopping it ends a run after its current batch. */
export function startDeliveryLogRetention(options: Omit<RetentionOptions, 'signal'> & { logger: Logger }): BackgroundLoop {
  const stopping = new AbortController();
  const loop = startBackgroundLoop({
    name: 'delivery log retention',
    intervalMs: RETENTION_EVERY_MS,
    logger: options.logger,
    runOnce: async () => {
      const { outcome, deleted } = await runDeliveryLogRetention({ ...options, signal: stopping.signal });
      if (deleted > 0)
        options.logger.info({ deleted, outcome, retentionDays: options.days }, 'deleted delivery_log rows past the retention');
      // Rows left: the next run is due now (endMaintenanceTurn), after a batch's pause.
      return outcome === 'moreLeft' ? (options.pauseMs ?? BATCH_PAUSE_MS) : undefined;
    },
  });
  return {
    wake: () => loop.wake(),
    stop: () => {
      stopping.abort();
      return loop.stop();
    },
  };
}
