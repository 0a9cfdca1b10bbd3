import type { Redis } from 'ioredis';

/**
 * Counts one request in the current second of Redis' clock, for one host, and answers the count and
 * the milliseconds into that second. Redis' clock, not each replica's: every replica counts into
 * the same window. The key outlives its second briefly, then goes.
 */
const TAKE_SCRIPT = `
local now = redis.call('TIME')
local key = KEYS[1] .. ':' .. now[1]
local count = redis.call('INCR', key)
if count == 1 then redis.call('PEXPIRE', key, 2000) end
return { count, math.floor(tonumber(now[2]) / 1000) }
`;

export type RateDecision = { go: true } | { go: false; until: number };

/**
 * The optional per-partner rate limit (PARTNER_RATE_LIMITS): at most `limit` callbacks to a host in
 * any second of Redis' clock, across all replicas. A callback over the limit is not sent: its order is
 * deferred to the second where it would fit, counted from how far over the limit this second already
 * is, so a backlog is spread out at the partner's pace instead of coming back all at once. Every try
 * counts, sent or not, which is what keeps later tries from landing in the same crowded second.
 */
export class PartnerRateLimit {
  /** Per host, until when this process knows its current second is full: orders wait without a claim. */
  private readonly fullUntil = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly limits: ReadonlyMap<string, number>,
  ) {}

  limited(host: string): boolean {
    return this.limits.has(host.toLowerCase());
  }

  /** Until when the host's current second is known to be full, or undefined. Local: no round trip. */
  knownFullUntil(host: string, now: number): number | undefined {
    const until = this.fullUntil.get(host.toLowerCase());
    return until !== undefined && until > now ? until : undefined;
  }

  /** Takes a place for one callback to `host` now, or says when to come back. */
  async take(host: string): Promise<RateDecision> {
    const key = host.toLowerCase();
    const limit = this.limits.get(key);
    if (limit === undefined) return { go: true };
    const [count, msIntoSecond] = (await this.redis.eval(TAKE_SCRIPT, 1, `${this.keyPrefix}:rate:${key}`)) as [number, number];
    if (count <= limit) return { go: true };
    const localNow = Date.now();
    const secondEndsAt = localNow + (1000 - msIntoSecond);
    this.fullUntil.set(key, secondEndsAt);
    // The (count - limit)-th try over the limit fits that many limits' worth of seconds ahead; within
    // that second, anywhere, so the deferred orders do not all come back at its first millisecond.
    const secondsAhead = Math.ceil((count - limit) / limit) - 1;
    return { go: false, until: secondEndsAt + secondsAhead * 1000 + Math.floor(Math.random() * 1000) };
  }
}

/**
 * PARTNER_RATE_LIMITS: `host=requests_per_second` pairs, comma-separated, e.g.
 * `api.example.com=50,hooks.partner.io=10`. Hosts are matched as the callback URL's host name,
 * lowercased (IDN hosts in their punycode form). Throws a message for the config error otherwise.
 */
export function parseRateLimits(value: string): Map<string, number> {
  const limits = new Map<string, number>();
  for (const entry of value.split(',').map((part) => part.trim()).filter(Boolean)) {
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
