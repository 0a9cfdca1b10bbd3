import type { Cluster, Redis } from 'ioredis';

import type { Logger } from '../observability/logger';

/**
 * Counts one request in the current second of Redis' clock, for one host, and answers the count and
 * the milliseconds into that second. Redis' clock, not each replica's: every replica counts into the
 * same window. One hash per host (its declared key, so a Redis Cluster can route the script), a field per
 * second; the field of two seconds ago is dropped, and the hash goes when the host is idle.
 */
const TAKE_SCRIPT = `
local now = redis.call('TIME')
local second = tonumber(now[1])
local count = redis.call('HINCRBY', KEYS[1], second, 1)
if count == 1 then
  redis.call('HDEL', KEYS[1], second - 2)
  redis.call('PEXPIRE', KEYS[1], 3000)
end
return { count, math.floor(tonumber(now[2]) / 1000) }
`;

/** Go now, or come back after `delayMs`. */
export type RateDecision = { go: true } | { go: false; delayMs: number };

/** When Redis cannot be asked, a callback waits this long rather than going out unpaced. */
const UNKNOWN_RATE_DELAY_MS = 1000;

/**
 * The optional per-partner rate limit (PARTNER_RATE_LIMITS): at most `limit` callbacks to a host in
 * any second of Redis' clock, across all replicas. A callback over the limit is not sent: its order is
 * deferred to the second where it would fit, counted from how far over the limit this second already
 * is, so a backlog is spread out at the partner's pace instead of coming back all at once. Every try
 * counts, sent or not, which is what keeps later tries from landing in the same crowded second.
 */
export class PartnerRateLimit {
  /** Per host, until when (performance.now()) this process knows its current second is full. */
  private readonly fullUntil = new Map<string, number>();

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly keyPrefix: string,
    private readonly limits: ReadonlyMap<string, number>,
  ) {}

  /**
   * How long until the host's current second is over, when it is known to be full (no round trip), or
   * undefined; the delay lands anywhere in the next second, so deferred orders do not all return at once.
   */
  knownFull(host: string): { delayMs: number; reason: string } | undefined {
    const until = this.fullUntil.get(host.toLowerCase());
    const left = until === undefined ? 0 : until - performance.now();
    return left > 0 ? { delayMs: left + Math.floor(Math.random() * 1000), reason: `rate limit of ${host} used up this second` } : undefined;
  }

  /**
   * Takes a place for one callback to `host` now, or says when to come back. When Redis cannot be asked,
   * the callback waits a second rather than going out unpaced: the limit is the partner's.
   */
  async take(host: string, log: Logger): Promise<RateDecision> {
    const key = host.toLowerCase();
    const limit = this.limits.get(key);
    if (limit === undefined) return { go: true };
    let count: number;
    let msIntoSecond: number;
    try {
      [count, msIntoSecond] = (await this.redis.eval(TAKE_SCRIPT, 1, `${this.keyPrefix}:rate:{${key}}`)) as [number, number];
    } catch (err) {
      log.warn({ err, host }, 'could not check the partner rate limit; deferring the callback');
      return { go: false, delayMs: UNKNOWN_RATE_DELAY_MS };
    }
    if (count <= limit) return { go: true };
    const secondLeftMs = 1000 - msIntoSecond;
    this.fullUntil.set(key, performance.now() + secondLeftMs);
    // The (count - limit)-th try over the limit fits that many limits' worth of seconds ahead; within
    // that second, anywhere, so the deferred orders do not all come back at its first millisecond.
    const secondsAhead = Math.ceil((count - limit) / limit) - 1;
    return { go: false, delayMs: secondLeftMs + secondsAhead * 1000 + Math.floor(Math.random() * 1000) };
  }
}

/**
 * PARTNER_RATE_LIMITS: `host=requests_per_second` pairs, comma-separated, e.g.
 * `api.example.com=50,hooks.partner.io=10`. Hosts are matched as the callback URL's host name,
 * lowercased (IDN hosts in their punycode form). Throws a message for the config error otherwise.
 */
export function parseRateLimits(value: string): Map<string, number> {
  const limits = new Map<string, number>();
  for (const entry of value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const match = /^([^=\s]+)\s*=\s*(\d+)$/.exec(entry);
    if (!match) throw new Error(`"${entry}" is not host=requests_per_second`);
    const [, host, perSecond] = match;
    const rate = Number(perSecond);
    if (rate < 1 || rate > 100_000) throw new Error(`"${entry}": requests per second must be 1-100000`);
    const hostname = hostNameOf(host);
    if (!hostname) throw new Error(`"${entry}": "${host}" is not a host name or address (no port, no path)`);
    if (limits.has(hostname)) throw new Error(`"${hostname}" is listed twice`);
    limits.set(hostname, rate);
  }
  return limits;
}

/** The host as a callback URL's `hostname` would spell it (lowercase, punycode), or undefined. */
function hostNameOf(host: string): string | undefined {
  if (/[/?#@\\]/.test(host)) return undefined;
  try {
    const url = new URL(`http://${host}/`);
    return url.port === '' ? url.hostname : undefined;
  } catch {
    return undefined;
  }
}
