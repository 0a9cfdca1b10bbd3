import { UsageError } from '../errors/usage-error';

/** The largest value of Postgres' bigint: a larger id would be a database error, not a user one. */
const MAX_ORDER_ID = 9223372036854775807n;

/**
 * An order id as typed, in canonical form ("007" is "7"): the BullMQ job id is derived from the text,
 * so "007" must not look for a job `order-007` that never exists. Undefined when it is not an id.
 */
export function canonicalOrderId(value: string): string | undefined {
  const trimmed = value.trim();
  if (!/^\d{1,20}$/.test(trimmed) || BigInt(trimmed) > MAX_ORDER_ID) return undefined;
  return BigInt(trimmed).toString();
}

export function parseOrderId(value: string): string {
  const id = canonicalOrderId(value);
  if (id === undefined) throw new UsageError(`order id must be a number from 0 to ${MAX_ORDER_ID}; got ${JSON.stringify(value)}`);
  return id;
}

/** A whole number from 1 to `max`, or a one-line error that names the flag. */
export function parsePositiveInteger(flag: string, value: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError(`${flag}: expected a whole number from 1 to ${max}; got ${JSON.stringify(value)}`);
  }
  return n;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * An ISO 8601 date or date-time. Without a zone it is UTC (a date alone is midnight UTC), whatever the
 * machine's zone: the same command gives the same answer on every host. Impossible dates (02-30) are
 * refused rather than rolled over into the next month as Date does.
 */
export function parseTimestamp(flag: string, value: string): Date {
  const fail = () =>
    new UsageError(`${flag}: expected an ISO timestamp like 2026-11-24T10:00:00Z or 2026-11-24; got ${JSON.stringify(value)}`);
  const m = ISO.exec(value.trim());
  if (!m) throw fail();
  const [year, month, day, hour = 0, minute = 0, second = 0] = m
    .slice(1, 7)
    .map((p) => (p === undefined ? undefined : Number(p))) as number[];
  const ms = m[7] ? Math.floor(Number(m[7]) * 1000) : 0;
  const utc = new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms));
  utc.setUTCFullYear(year); // Date.UTC maps years 0-99 to 1900-1999
  const sameFields =
    utc.getUTCFullYear() === year &&
    utc.getUTCMonth() === month - 1 &&
    utc.getUTCDate() === day &&
    utc.getUTCHours() === hour &&
    utc.getUTCMinutes() === minute &&
    utc.getUTCSeconds() === second;
  if (!sameFields) throw fail();
  const zone = m[8]?.toUpperCase();
  if (!zone || zone === 'Z') return utc;
  const [, sign, zh, zm = '0'] = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
  if (Number(zh) > 14 || Number(zm) > 59) throw fail();
  const offsetMs = (Number(zh) * 60 + Number(zm)) * 60_000 * (sign === '+' ? 1 : -1);
  return new Date(utc.getTime() - offsetMs);
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration like 90s, 30m, 2h or 1d (a bare number is seconds), up to `maxMs`; a one-line error otherwise. */
export function parseDuration(flag: string, value: string, maxMs = 30 * 86_400_000): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  const ms = m ? Math.round(Number(m[1]) * DURATION_UNITS_MS[(m[2] ?? 's').toLowerCase()]) : NaN;
  if (!Number.isFinite(ms) || ms < 1000 || ms > maxMs) {
    throw new UsageError(
      `${flag}: expected a duration from 1s to ${maxMs / 86_400_000}d, like 90s, 30m, 2h or 1d; got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}
