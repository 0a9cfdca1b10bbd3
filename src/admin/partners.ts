import type { Cluster, Redis } from 'ioredis';

import type { Config } from '../config';
import type { Db } from '../db/connection';
import { insertPartnerAudit } from '../db/partners';
import { readyByPartner } from '../db/reports/order-counts';
import { UsageError } from '../errors/usage-error';
import { UserError } from '../errors/user-error';
import {
  type CircuitEvent,
  type CircuitRules,
  type CircuitState,
  clearsWindow,
  effectiveState,
  nextState,
} from '../partners/partner-circuit';
import { type PartnerDirectory, RedisPartnerDirectory } from '../partners/partner-directory';
import { type PartnerStore, readRequest, storeTimings } from '../partners/partner-store';
import { RedisPartnerStore } from '../partners/redis-partner-store';

export interface PartnerRow {
  origin: string;
  state: CircuitState;
  /** ISO times on Redis' clock; null when not in a timed state. */
  since: string | null;
  until: string | null;
  reason: string;
  actor: string | null;
  /** The window's attempts, failures, and their ratio (null without attempts). */
  attempts: number;
  failures: number;
  failureRate: number | null;
  inFlight: number;
  ready: number;
  oldestReadyAgeSeconds: number | null;
  lastError: { message: string; at: string } | null;
}

export interface PartnerAdminDeps {
  db: Db;
  store: PartnerStore;
  directory: PartnerDirectory;
  rules: CircuitRules;
}

/** The partner store and directory on the admin command's Redis connection. */
export function partnerAdminDeps(
  config: Readonly<Pick<Config, 'partnerRules' | 'queueName'>>,
  db: Db,
  redis: Redis | Cluster,
): PartnerAdminDeps {
  const rules = config.partnerRules;
  return {
    db,
    store: new RedisPartnerStore(redis, config.queueName, storeTimings(rules.windowMs), rules.cooldownMs),
    directory: new RedisPartnerDirectory(redis, config.queueName),
    rules,
  };
}

/** Partners seen this recently are listed even with nothing to deliver. */
const LISTED_IF_SEEN_WITHIN_MS = 7 * 86_400_000;

/**
 * Every partner seen lately, held, or with orders at 5: its state from Redis (as it stands now: a timed
 * state that has ended shows as half-open), its window and slots, its backlog from Postgres. Held ones
 * first, longest held first; then by backlog.
 */
export async function listPartners(deps: PartnerAdminDeps): Promise<PartnerRow[]> {
  const [backlogs, seen, notClosed] = await Promise.all([
    readyByPartner(deps.db),
    deps.directory.recent(LISTED_IF_SEEN_WITHIN_MS),
    deps.directory.notClosed(),
  ]);
  const backlog = new Map(backlogs.filter((b) => b.origin !== null).map((b) => [b.origin!, b]));
  const origins = [...new Set([...notClosed.states.keys(), ...seen, ...backlog.keys()])];
  const rows = await Promise.all(
    origins.map(async (origin): Promise<PartnerRow> => {
      const snapshot = await deps.store.exchange(origin, readRequest());
      const state = effectiveState(snapshot.state, snapshot.now, deps.rules);
      const { attempts, failures } = snapshot.tallies;
      const timed = state.state !== 'closed' && state.state !== 'half_open';
      return {
        origin,
        state: state.state,
        since: state.since > 0 ? new Date(state.since).toISOString() : null,
        until: timed && state.until > 0 ? new Date(state.until).toISOString() : null,
        reason: state.reason,
        actor: state.actor ?? null,
        attempts,
        failures,
        failureRate: attempts > 0 ? failures / attempts : null,
        inFlight: snapshot.inFlight,
        ready: backlog.get(origin)?.ready ?? 0,
        oldestReadyAgeSeconds: backlog.get(origin)?.oldestReadyAgeSeconds ?? null,
        lastError: snapshot.lastError ? { message: snapshot.lastError.message, at: new Date(snapshot.lastError.at).toISOString() } : null,
      };
    }),
  );
  const heldFirst = (row: PartnerRow) => (row.state === 'closed' ? 1 : 0);
  return rows.sort(
    (a, b) =>
      heldFirst(a) - heldFirst(b) || (a.since ?? '').localeCompare(b.since ?? '') || b.ready - a.ready || a.origin.localeCompare(b.origin),
  );
}

export interface PartnerChange {
  origin: string;
  before: CircuitState;
  after: CircuitState;
  until: string | null;
  /** Set when the state changed but the producers' directory could not be told (they learn within seconds). */
  warning?: string;
}

/** How many times a pause or resume tries again when a replica changed the partner's state meanwhile. */
const CHANGE_TRIES = 5;

/**
 * Pauses (holds) or resumes partners by hand, on every replica: a transition of the partner's state,
 * written only over the version it was decided on (tried again if a replica changed it meanwhile), then
 * noted in the directory so producers stop leasing its orders, and audited in partner_audit.
 */
export async function changePartners(
  deps: PartnerAdminDeps,
  target: string,
  change: { action: 'pause'; forMs?: number; reason?: string; actor: string } | { action: 'resume'; actor: string },
): Promise<PartnerChange[]> {
  const origins = await resolveTarget(deps, target);
  const changes: PartnerChange[] = [];
  for (const origin of origins) {
    let done: PartnerChange | undefined;
    for (let tries = 0; !done; tries++) {
      const snapshot = await deps.store.exchange(origin, readRequest());
      const before = effectiveState(snapshot.state, snapshot.now, deps.rules);
      const event: CircuitEvent =
        change.action === 'pause'
          ? {
              kind: 'operator_pause',
              until: change.forMs ? snapshot.now + change.forMs : 0,
              actor: change.actor,
              reason: change.reason ?? 'paused by hand',
            }
          : { kind: 'operator_resume', actor: change.actor };
      const to = nextState(snapshot.state, event, snapshot.now, deps.rules);
      const result = to
        ? await deps.store.transition(origin, snapshot.state.version, to, clearsWindow(to))
        : { applied: true, state: snapshot.state };
      if (result.applied) {
        // Noted even when nothing changed: a note lost earlier is mended by saying it again.
        const warning = await deps.directory.note(origin, result.state).then(
          () => undefined,
          (err: Error) => `the directory the producers read was not updated (${err.message}); they catch up within seconds`,
        );
        const after = to ? result.state.state : before.state;
        done = {
          origin,
          before: before.state,
          after,
          until: to && result.state.until > 0 ? new Date(result.state.until).toISOString() : null,
          ...(warning ? { warning } : {}),
        };
      } else if (tries + 1 >= CHANGE_TRIES) {
        throw new Error(`the state of ${origin} kept changing under us; try again`);
      }
    }
    await insertPartnerAudit(deps.db, {
      actor: change.actor,
      action: change.action,
      origin,
      reason: change.action === 'pause' ? change.reason : undefined,
      pausedUntil: done.until ? new Date(done.until) : undefined,
      stateBefore: done.before,
      stateAfter: done.after,
    });
    changes.push(done);
  }
  return changes;
}

/**
 * An origin as typed (scheme://host[:port], anything after it ignored), or a host name: every partner
 * on that host known to the directory or with orders at 5.
 */
async function resolveTarget(deps: PartnerAdminDeps, target: string): Promise<string[]> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new UsageError(`"${target}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new UsageError(`"${target}": a partner's origin is http:// or https://`);
    return [url.origin];
  }
  const host = target.trim().toLowerCase();
  if (!host || /[/?#@\s]/.test(host)) throw new UsageError(`"${target}" is neither an origin (https://host[:port]) nor a host name`);
  const [backlogs, seen, notClosed] = await Promise.all([
    readyByPartner(deps.db),
    deps.directory.recent(LISTED_IF_SEEN_WITHIN_MS),
    deps.directory.notClosed(),
  ]);
  const known = new Set([...backlogs.map((b) => b.origin).filter((o): o is string => o !== null), ...seen, ...notClosed.states.keys()]);
  const matching = [...known].filter((origin) => new URL(origin).hostname === host).sort();
  if (matching.length === 0)
    throw new UserError(`no partner on host ${host} is known (seen lately or with orders at 5); give its origin, e.g. https://${host}`);
  return matching;
}

export function formatPartners(rows: PartnerRow[], now = Date.now()): string {
  if (rows.length === 0) return 'no partners seen lately or with orders at 5';
  const ago = (iso: string | null) => (iso ? `${humanSeconds((now - Date.parse(iso)) / 1000)} ago` : '-');
  const until = (iso: string | null) => (iso ? `in ${humanSeconds((Date.parse(iso) - now) / 1000)}` : '-');
  const table = [
    ['PARTNER', 'STATE', 'SINCE', 'UNTIL', 'FAILED (WINDOW)', 'IN FLIGHT', 'READY', 'OLDEST', 'REASON / LAST ERROR'],
    ...rows.map((row) => [
      row.origin,
      row.state.replace('_', '-'),
      row.state === 'closed' ? '-' : ago(row.since),
      until(row.until),
      row.failureRate === null ? '-' : `${Math.round(row.failureRate * 100)}% of ${row.attempts}`,
      String(row.inFlight),
      String(row.ready),
      row.oldestReadyAgeSeconds === null ? '-' : humanSeconds(row.oldestReadyAgeSeconds),
      [
        row.state === 'closed' ? '' : `${row.reason}${row.actor ? ` (${row.actor})` : ''}`,
        row.lastError ? `last error ${ago(row.lastError.at)}: ${row.lastError.message}` : '',
      ]
        .filter(Boolean)
        .join('; ')
        .slice(0, 120),
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  return table
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatChanges(changes: PartnerChange[], action: 'pause' | 'resume'): string {
  return changes
    .map((c) =>
      c.before === c.after && !(action === 'pause' && c.after === 'held')
        ? `${c.origin}: ${c.after.replace('_', '-')}, nothing to ${action}`
        : `${c.origin}: ${c.before.replace('_', '-')} -> ${c.after.replace('_', '-')}` +
          `${c.until ? ` until ${c.until}` : ''}${c.warning ? ` (warning: ${c.warning})` : ''}`,
    )
    .join('\n');
}

function humanSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 360) / 10}h`;
  return `${Math.round(s / 8640) / 10}d`;
}
