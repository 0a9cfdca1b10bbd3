#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { Command, CommanderError } from 'commander';

import { resolveActor } from './admin/actor';
import { ADMIN_LONG_STATEMENT_TIMEOUT_MS, type AdminServices } from './admin/admin-services';
import { EXIT_CODES_HELP, exitCodeOf } from './admin/exit-codes';
import { formatInspection, inspectOrder } from './admin/inspect';
import { parseDuration, parsePositiveInteger } from './admin/parse-options';
import { changePartners, formatChanges, formatPartners, listPartners, partnerAdminDeps } from './admin/partners';
import { ProgressLine } from './admin/progress';
import { formatRequeueReport, requeue } from './admin/requeue';
import {
  DEFAULT_BATCH_SIZE,
  MAX_BATCH_SIZE,
  parseBatchSize,
  parseRequeueOptions,
  type RequeueOptionsInput,
} from './admin/requeue-selector';
import { runAdminCommand } from './admin/run-admin-command';
import { addSecret, checkGivenSecret, formatSecrets, listSecrets, normalizeHost, parseRetireWhich, retireSecret } from './admin/secrets';
import { collectStats, formatStats, MAX_STATS_MINUTES } from './admin/stats';
import { type Config, loadConfig } from './config';
import { runDaemon } from './daemon';
import { migrateLatest, migrationStatus } from './db/migrate';
import { ConfigError } from './errors/config-error';
import { ServiceUnreachableError } from './errors/service-unreachable-error';
import { UserError } from './errors/user-error';

/** Argument parsing only: one function per command, each of which lives in its own module. */
const program = new Command()
  .name('order-callbacks')
  .description('Delivers signed HTTP callbacks for orders at status 5, crash-safe: Postgres is the truth, BullMQ the buffer.')
  .version(packageVersion(), '-V, --version', 'print the version')
  .option('--debug', 'on a failure, print its stack trace as well as its message')
  .helpOption('-h, --help', 'print help for a command')
  .showHelpAfterError('(add --help for the usage)')
  // Commander's own errors come back here, to exit 2 like every other usage mistake.
  .exitOverride()
  .addHelpText('after', EXIT_CODES_HELP);

const migrate = program
  .command('migrate')
  .description('create the database in DATABASE_URL if missing and apply the migrations; `migrate status` lists them')
  .option('--json', 'print JSON instead of text: {"applied": [names applied now]}')
  .action((options: { json?: boolean }) =>
    admin(async (services, config) => {
      // Connecting is bounded by the deadline; the migrations are not: one may take minutes.
      const applied = await services.unbounded('postgres', () => migrateLatest(config.databaseUrl, services.deadline.remainingMs()));
      console.log(options.json ? JSON.stringify({ applied }) : applied.length ? `applied ${applied.join(', ')}` : 'already up to date');
    }),
  );
migrate
  .command('status')
  .description('the migrations applied to the database, and those pending')
  .option('--json', 'print JSON instead of text: {"applied": [...], "pending": [...]}')
  .action((options: { json?: boolean }) =>
    admin(async (services) => {
      const status = await services.read('postgres', async () => migrationStatus(await services.postgres()));
      // Commander gives a --json after `status` to `migrate`, which has one too.
      if (options.json || migrate.opts<{ json?: boolean }>().json) return console.log(JSON.stringify(status));
      console.log(
        [...status.applied.map((name) => `applied  ${name}`), ...status.pending.map((name) => `pending  ${name}`)].join('\n') ||
          'no migrations',
      );
      console.log(status.pending.length ? `${status.pending.length} pending: run \`order-callbacks migrate\`` : 'up to date');
    }),
  );

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
  .description(
    'orders by status, age of the oldest ready order, orders on their last attempt within the hour, ' +
      'recent outcomes, queue depths, failing and retrying hosts',
  )
  .option('--json', 'print JSON instead of text')
  .option('--minutes <n>', 'window for the recent outcomes and retrying hosts', '15')
  .action((options: { json?: boolean; minutes: string }) => {
    const minutes = parsePositiveInteger('--minutes', options.minutes, MAX_STATS_MINUTES);
    return admin(async (services, config) => {
      const stats = await collectStats(services, config.maxAttempts, minutes);
      console.log(options.json ? JSON.stringify(stats) : formatStats(stats, config.queueName));
    });
  });

program
  .command('inspect')
  .description('one order: its row, every delivery attempt, and where its job is in the queue')
  .argument('<orderId>', 'the order id')
  .option('--json', 'print JSON instead of text (every attempt, the whole row)')
  .action((orderId: string, options: { json?: boolean }) =>
    admin(async (services) => {
      const inspection = await inspectOrder(services, orderId);
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
    return admin(
      async (services) => {
        // Progress for a person watching a long run; nothing on a pipe or with --json, where stdout is the report.
        const progress =
          process.stderr.isTTY && !options.json ? new ProgressLine('requeued', (text) => process.stderr.write(text)) : undefined;
        const db = await services.postgres();
        const report = await services
          .unbounded('postgres', () =>
            requeue(db, {
              selector,
              statuses,
              actor,
              dryRun: Boolean(options.dryRun),
              batchSize,
              onBatch: progress && (({ processedSoFar, matched }) => progress.update(processedSoFar, matched)),
            }),
          )
          .finally(() => progress?.done());
        console.log(options.json ? JSON.stringify(report) : formatRequeueReport(report));
      },
      // Reaching Postgres is bounded by the deadline; the batches after it by a statement timeout each.
      { statementTimeoutMs: ADMIN_LONG_STATEMENT_TIMEOUT_MS },
    );
  });

const secrets = program
  .command('secrets')
  .description(
    'per-partner signing secrets, by callback host: a host with active secrets is signed with all of them, others with CALLBACK_SECRET',
  );
secrets
  .command('add')
  .description('add a secret for a host (generated unless --secret); its other active secrets stay active, so this also starts a rotation')
  .requiredOption('--host <host>', 'the callback host, e.g. hooks.partner.example')
  .option('--secret <whsec>', 'use this secret instead of generating one')
  .option('--json', 'print JSON instead of text: {"id", "host", "secret"}')
  .action((options: { host: string; secret?: string; json?: boolean }) => {
    normalizeHost(options.host);
    checkGivenSecret(options.secret);
    return admin(async (services) => {
      const added = await services.read('postgres', async () => addSecret(await services.postgres(), options.host, options.secret));
      console.log(
        options.json
          ? JSON.stringify(added)
          : `secret ${added.id} for ${added.host} (shown once; give it to the partner):\n${added.secret}`,
      );
    });
  });
secrets
  .command('rotate')
  .description('add a new generated secret for a host; both are signed with until `retire --all-but-newest`')
  .requiredOption('--host <host>', 'the callback host')
  .option('--json', 'print JSON instead of text: {"id", "host", "secret"}')
  .action((options: { host: string; json?: boolean }) => {
    normalizeHost(options.host);
    return admin(async (services) => {
      const added = await services.read('postgres', async () => addSecret(await services.postgres(), options.host));
      if (options.json) return console.log(JSON.stringify(added));
      console.log(`secret ${added.id} for ${added.host} (shown once; give it to the partner):\n${added.secret}`);
      console.log('callbacks now carry a signature for each active secret; retire the old one once the partner has switched');
    });
  });
secrets
  .command('retire')
  .description("stop signing with a host's secret")
  .requiredOption('--host <host>', 'the callback host')
  .option('--id <id>', 'the secret to retire')
  .option('--all-but-newest', 'retire every active secret but the newest (ends a rotation)')
  .option('--json', 'print JSON instead of text: {"retired": n}')
  .action((options: { host: string; id?: string; allButNewest?: boolean; json?: boolean }) => {
    normalizeHost(options.host);
    parseRetireWhich(options);
    return admin(async (services) => {
      const retired = await services.read('postgres', async () => retireSecret(await services.postgres(), options.host, options));
      console.log(options.json ? JSON.stringify({ retired }) : `retired ${retired} secret(s)`);
    });
  });
secrets
  .command('list')
  .description('secrets by host (ids and dates, never the secrets)')
  .option('--host <host>', 'only this host')
  .option('--json', 'print JSON instead of text: [{"id", "host", "createdAt", "retiredAt", "active"}]')
  .action((options: { host?: string; json?: boolean }) => {
    if (options.host !== undefined) normalizeHost(options.host);
    return admin(async (services) => {
      const rows = await services.read('postgres', async () => listSecrets(await services.postgres(), options.host));
      console.log(options.json ? JSON.stringify(rows) : formatSecrets(rows));
    });
  });

const partners = program
  .command('partners')
  .description('partners (callback origins): their state, shared by every replica, and holding them by hand; see docs/partners.md');
partners
  .command('list', { isDefault: true })
  .description(
    'partners seen lately, held, or with ready orders: state, failure rate, in flight, ready orders, oldest ready age, last error',
  )
  .option('--json', 'print JSON instead of text')
  .action((options: { json?: boolean }) =>
    admin(async (services, config) => {
      const rows = await services.readBoth((db, redis) => listPartners(partnerAdminDeps(config, db, redis)));
      console.log(options.json ? JSON.stringify(rows) : formatPartners(rows));
    }),
  );
partners
  .command('pause')
  .description(
    'hold a partner on every replica (within a second): none of its orders is sent or leased until `resume`, or the end given with --for',
  )
  .argument('<partner>', 'an origin (https://host[:port]), or a host name for every known partner on it')
  .option('--for <duration>', 'resume by itself after this long (90s, 30m, 2h, 1d); half-open then, as after any hold')
  .option('--reason <text>', 'why, for the audit and the partners list')
  .option('--actor <name>', 'who is doing this, for the audit row (default: the OS user)')
  .option('--json', 'print JSON instead of text')
  .action((target: string, options: { for?: string; reason?: string; actor?: string; json?: boolean }) => {
    const forMs = options.for === undefined ? undefined : parseDuration('--for', options.for);
    const actor = resolveActor(options.actor);
    return admin(async (services, config) => {
      const changes = await services.readBoth((db, redis) =>
        changePartners(partnerAdminDeps(config, db, redis), target, {
          action: 'pause',
          forMs,
          reason: options.reason?.slice(0, 500),
          actor,
        }),
      );
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
    return admin(async (services, config) => {
      const changes = await services.readBoth((db, redis) =>
        changePartners(partnerAdminDeps(config, db, redis), target, { action: 'resume', actor }),
      );
      console.log(options.json ? JSON.stringify(changes) : formatChanges(changes, 'resume'));
    });
  });

/**
 * Set once an admin command has answered and closed what it opened (or given up on that after
 * ADMIN_CLOSE_TIMEOUT_MS): the process ends then, rather than when the last timer of a driver that
 * tried a silent host runs out.
 */
let endProcess = false;

async function admin(
  run: (services: AdminServices, config: Readonly<Config>) => Promise<void>,
  options: { statementTimeoutMs?: number } = {},
): Promise<void> {
  try {
    await runAdminCommand(loadConfig(), run, options);
  } finally {
    endProcess = true;
  }
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
}

// Every admin command's --help ends with the exit codes; the daemons' do not (they run until stopped).
const adminCommands = (commands: readonly Command[]): Command[] => commands.flatMap((c) => [c, ...adminCommands(c.commands)]);
for (const command of adminCommands(program.commands.filter((c) => !['start', 'worker', 'producer'].includes(c.name())))) {
  command.addHelpText('after', EXIT_CODES_HELP);
}

program
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    process.exitCode = exitCodeOf(err);
    if (err instanceof CommanderError) return; // commander has printed the error, the help or the version
    if (program.opts<{ debug?: boolean }>().debug && err instanceof Error) console.error(err.stack);
    else if (err instanceof ConfigError) console.error(`order-callbacks: bad configuration: ${err.message}`);
    else if (err instanceof UserError || err instanceof ServiceUnreachableError) console.error(`order-callbacks: ${err.message}`);
    else console.error(`order-callbacks: ${err instanceof Error ? err.message.split('\n')[0] : String(err)} (--debug for the stack trace)`);
  })
  .finally(() => {
    if (endProcess) process.exit();
  });
