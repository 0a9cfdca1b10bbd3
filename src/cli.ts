#!/usr/bin/env node
import { Command } from 'commander';
import { resolveActor } from './admin/actor';
import { formatInspection, inspectOrder } from './admin/inspect';
import { parseDuration, parsePositiveInteger } from './admin/parse-options';
import { changePartners, formatChanges, formatPartners, listPartners, type PartnerAdminDeps } from './admin/partners';
import { formatRequeueReport, requeue } from './admin/requeue';
import { addSecret, formatSecretList, retireSecret } from './admin/secrets';
import { DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, parseBatchSize, parseRequeueOptions, type RequeueOptionsInput } from './admin/requeue-selector';
import { collectStats, formatStats, MAX_STATS_MINUTES } from './admin/stats';
import { loadConfig, type Config } from './config';
import { runDaemon } from './daemon';
import { createDb, type Db } from './db/connection';
import { migrateLatest } from './db/migrate';
import { ConfigError } from './errors/config-error';
import { UserError } from './errors/user-error';
import type { Cluster, Redis } from 'ioredis';
import { connectRedis } from './queue/redis-topology';
import { RedisPartnerDirectory } from './partners/partner-directory';
import { RedisPartnerStore } from './partners/redis-partner-store';
import { storeTimings } from './partners/partner-store';
import { CallbackQueues } from './queue/shards';

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
  .description('orders by status, age of the oldest ready order, orders on their last attempt within the hour, recent outcomes, queue depths, failing and retrying hosts')
  .option('--json', 'print JSON instead of text')
  .option('--minutes <n>', 'window for the recent outcomes and retrying hosts', '15')
  .action((options: { json?: boolean; minutes: string }) => {
    const minutes = parsePositiveInteger('--minutes', options.minutes, MAX_STATS_MINUTES);
    return withConnections(async ({ config, db, queue }) => {
      const stats = await collectStats(db, queue(), config.maxAttempts, minutes);
      console.log(options.json ? JSON.stringify(stats) : formatStats(stats, config.queueName));
    });
  });

program
  .command('inspect')
  .description('one order: its row, every delivery attempt, and where its job is in the queue')
  .argument('<orderId>', 'the order id')
  .option('--json', 'print JSON instead of text (every attempt, the whole row)')
  .action((orderId: string, options: { json?: boolean }) =>
    withConnections(async ({ db, queue }) => {
      const inspection = await inspectOrder(db, queue(), orderId);
      console.log(options.json ? JSON.stringify(inspection) : formatInspection(inspection));
    }),
  );

program
  .command('requeue')
  .description('move failed orders (7) back to 5 so they are delivered again; with --resend-delivered, delivered ones (6) too')
  .option('--id <ids>', 'comma-separated order ids')
  .option('--status <status>', 'status to move back: 7 (the default), or 6 with --resend-delivered')
  .option('--since <iso>', 'updated (failed) at or after this ISO timestamp (UTC unless it has a zone)')
  .option('--until <iso>', 'updated (failed) at or before this ISO timestamp (UTC unless it has a zone)')
  .option('--error-like <text>', 'last_error contains this text (taken literally, case-insensitive)')
  .option('--callback-host <host>', 'callback_url has this host (no scheme or port; case-insensitive)')
  .option('--limit <n>', 'change at most this many orders')
  .option('--all', 'every failed order: required when no other selector is given')
  .option('--resend-delivered', 'also send delivered orders (6) again, with the same webhook-id')
  .option('--dry-run', 'print what would change and change nothing (still audited)')
  .option('--actor <name>', 'who is doing this, for the audit row (default: the OS user)')
  .option('--batch-size <n>', `orders per conditional update and transaction, at most ${MAX_BATCH_SIZE} (default: ${DEFAULT_BATCH_SIZE})`)
  .option('--json', 'print JSON instead of text')
  .addHelpText(
    'after',
    `
Selectors narrow each other; at least one of --id, --since, --until, --error-like, --callback-host or
--all is required. Orders at 5, or at 6 without --resend-delivered, are reported and left alone; so are
unknown ids. Every run, dry runs included, writes a row to requeue_audit.

Examples:
  order-callbacks requeue --id 101,102,103
  order-callbacks requeue --callback-host hooks.partner.example --since 2026-11-24T02:00:00Z --dry-run
  order-callbacks requeue --error-like "HTTP 503" --limit 1000
  order-callbacks requeue --all --actor "$USER, INC-4211"
  order-callbacks requeue --id 77 --resend-delivered`,
  )
  .action((options: RequeueOptionsInput & { dryRun?: boolean; actor?: string; json?: boolean }) => {
    // Everything the caller typed is checked before a connection is opened or a row is written.
    const { selector, statuses } = parseRequeueOptions(options);
    const batchSize = parseBatchSize(options.batchSize);
    const actor = resolveActor(options.actor);
    return withConnections(async ({ db }) => {
      const report = await requeue(db, {
        selector,
        statuses,
        actor,
        dryRun: Boolean(options.dryRun),
        batchSize,
        // Progress for a person watching a long run; nothing on a pipe, where stdout is the report.
        onBatch: process.stderr.isTTY ? ({ changedSoFar }) => process.stderr.write(`\rrequeued ${changedSoFar}…`) : undefined,
      });
      if (process.stderr.isTTY && report.changed) process.stderr.write('\n');
      console.log(options.json ? JSON.stringify(report) : formatRequeueReport(report));
    });
  });

const secrets = program
  .command('secrets')
  .description("per-partner signing secrets, by callback host: a host with active secrets is signed with all of them, others with CALLBACK_SECRET");
secrets
  .command('add')
  .description('add a secret for a host (generated unless --secret); its other active secrets stay active, so this also starts a rotation')
  .requiredOption('--host <host>', 'the callback host, e.g. hooks.partner.example')
  .option('--secret <whsec>', 'use this secret instead of generating one')
  .action((options: { host: string; secret?: string }) =>
    withConnections(async ({ db }) => {
      const added = await addSecret(db, options.host, options.secret);
      console.log(`secret ${added.id} for ${added.host} (shown once; give it to the partner):\n${added.secret}`);
    }),
  );
secrets
  .command('rotate')
  .description('add a new generated secret for a host; both are signed with until `retire --all-but-newest`')
  .requiredOption('--host <host>', 'the callback host')
  .action((options: { host: string }) =>
    withConnections(async ({ db }) => {
      const added = await addSecret(db, options.host);
      console.log(`secret ${added.id} for ${added.host} (shown once; give it to the partner):\n${added.secret}`);
      console.log('callbacks now carry a signature for each active secret; retire the old one once the partner has switched');
    }),
  );
secrets
  .command('retire')
  .description("stop signing with a host's secret")
  .requiredOption('--host <host>', 'the callback host')
  .option('--id <id>', 'the secret to retire')
  .option('--all-but-newest', 'retire every active secret but the newest (ends a rotation)')
  .action((options: { host: string; id?: string; allButNewest?: boolean }) =>
    withConnections(async ({ db }) => console.log(`retired ${await retireSecret(db, options.host, options)} secret(s)`)),
  );
secrets
  .command('list')
  .description('secrets by host (ids and dates, never the secrets)')
  .option('--host <host>', 'only this host')
  .action((options: { host?: string }) => withConnections(async ({ db }) => console.log(await formatSecretList(db, options.host))));

const partners = program
  .command('partners')
  .description('partners (callback origins): their state, shared by every replica, and holding them by hand; see docs/partners.md');
partners
  .command('list', { isDefault: true })
  .description('partners seen lately, held, or with ready orders: state, failure rate, in flight, ready orders, oldest ready age, last error')
  .option('--json', 'print JSON instead of text')
  .action((options: { json?: boolean }) =>
    withConnections(async ({ partnerAdmin }) => {
      const rows = await listPartners(partnerAdmin());
      console.log(options.json ? JSON.stringify(rows) : formatPartners(rows));
    }),
  );
partners
  .command('pause')
  .description('hold a partner on every replica (within a second): none of its orders is sent or leased until `resume`, or the end given with --for')
  .argument('<partner>', 'an origin (https://host[:port]), or a host name for every known partner on it')
  .option('--for <duration>', 'resume by itself after this long (90s, 30m, 2h, 1d); half-open then, as after any hold')
  .option('--reason <text>', 'why, for the audit and the partners list')
  .option('--actor <name>', 'who is doing this, for the audit row (default: the OS user)')
  .option('--json', 'print JSON instead of text')
  .action((target: string, options: { for?: string; reason?: string; actor?: string; json?: boolean }) => {
    const forMs = options.for === undefined ? undefined : parseDuration('--for', options.for);
    const actor = resolveActor(options.actor);
    return withConnections(async ({ partnerAdmin }) => {
      const changes = await changePartners(partnerAdmin(), target, { action: 'pause', forMs, reason: options.reason?.slice(0, 500), actor });
      console.log(options.json ? JSON.stringify(changes) : formatChanges(changes, 'pause'));
    });
  });
partners
  .command('resume')
  .description('end a hold by hand (or any hold) on every replica: the partner is closed, its orders go out again')
  .argument('<partner>', 'an origin (https://host[:port]), or a host name for every known partner on it')
  .option('--actor <name>', 'who is doing this, for the audit row (default: the OS user)')
  .option('--json', 'print JSON instead of text')
  .action((target: string, options: { actor?: string; json?: boolean }) => {
    const actor = resolveActor(options.actor);
    return withConnections(async ({ partnerAdmin }) => {
      const changes = await changePartners(partnerAdmin(), target, { action: 'resume', actor });
      console.log(options.json ? JSON.stringify(changes) : formatChanges(changes, 'resume'));
    });
  });

/** An admin command gives up on a Redis command after this long rather than hang. */
const ADMIN_REDIS_TIMEOUT_MS = 5000;

/** Opens what an admin command needs (the queue and Redis only if asked for) and closes it all afterwards. */
async function withConnections(
  run: (resources: { config: Readonly<Config>; db: Db; queue: () => CallbackQueues; partnerAdmin: () => PartnerAdminDeps }) => Promise<void>,
): Promise<void> {
  const config = loadConfig();
  const db = createDb(config.databaseUrl, 2);
  let queue: CallbackQueues | undefined;
  let redis: Redis | Cluster | undefined;
  const partnerAdmin = (): PartnerAdminDeps => {
    redis ??= connectRedis(config.redis, { maxRetriesPerRequest: 1, commandTimeout: ADMIN_REDIS_TIMEOUT_MS });
    redis.on('error', () => undefined); // each command fails with the reason; the connection's own retries need no words
    const rules = config.partnerRules;
    return {
      db,
      store: new RedisPartnerStore(redis, config.queueName, storeTimings(rules.windowMs), rules.cooldownMs),
      directory: new RedisPartnerDirectory(redis, config.queueName),
      rules,
    };
  };
  try {
    await run({ config, db, queue: () => (queue ??= CallbackQueues.open(config)), partnerAdmin });
  } finally {
    redis?.disconnect();
    await Promise.allSettled([db.destroy(), queue?.close()]);
  }
}

program.parseAsync(process.argv).catch((err: unknown) => {
  // A mistake of the caller's gets one line and exit 1; anything else is a bug or an outage: show it all.
  if (err instanceof ConfigError) console.error(`order-callbacks: bad configuration: ${err.message}`);
  else if (err instanceof UserError) console.error(`order-callbacks: ${err.message}`);
  else console.error(err);
  process.exitCode = 1;
});
