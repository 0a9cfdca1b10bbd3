#!/usr/bin/env node
import { Command } from 'commander';
import { collectStats, formatStats } from './admin/stats';
import { loadConfig } from './config';
import { runDaemon } from './daemon';
import { createDb } from './db/connection';
import { migrateLatest } from './db/migrate';
import { ConfigError } from './errors/config-error';
import { UserError } from './errors/user-error';
import { createCallbackQueue } from './queue/callback-queue';

/** Argument parsing only: one function per command, each of which lives in its own module. */
const program = new Command()
  .name('order-callbacks')
  .description('Delivers signed HTTP callbacks for orders at status 5, crash-safe: Postgres is the truth, BullMQ the buffer.')
  .showHelpAfterError();

program
  .command('migrate')
  .description('create the database in DATABASE_URL if missing and apply the migrations')
  .action(async () => {
    const config = loadConfig();
    const applied = await migrateLatest(config.databaseUrl);
    console.log(applied.length ? `applied ${applied.join(', ')}` : 'already up to date');
  });

program
  .command('start')
  .description('producer and workers in one process (run as many copies as you like)')
  .action(() => runDaemon('start'));
program
  .command('worker')
  .description('workers only: deliver the queued callbacks')
  .action(() => runDaemon('worker'));
program
  .command('producer')
  .description('producer only: enqueue ready orders')
  .action(() => runDaemon('producer'));

program
  .command('stats')
  .description('orders by status and the queue depths')
  .option('--json', 'print JSON instead of text')
  .action(async (options: { json?: boolean }) => {
    const config = loadConfig();
    const db = createDb(config.databaseUrl, 2);
    const queue = createCallbackQueue(config.queueName, config.redisUrl);
    try {
      const stats = await collectStats(db, queue);
      console.log(options.json ? JSON.stringify(stats) : formatStats(stats, config.queueName));
    } finally {
      await Promise.allSettled([db.destroy(), queue.close()]);
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  // A mistake of the caller's gets one line and exit 1; anything else is a bug or an outage: show it all.
  if (err instanceof ConfigError) console.error(`order-callbacks: bad configuration: ${err.message}`);
  else if (err instanceof UserError) console.error(`order-callbacks: ${err.message}`);
  else console.error(err);
  process.exitCode = 1;
});
