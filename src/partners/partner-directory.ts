import type { Cluster, Redis } from 'ioredis';

import type { PartnerState } from './partner-circuit';

/**
 * The index of partners across the queue's replicas: which are not closed (what a producer reads before
 * it leases, to leave held partners' orders where they are) and which have been seen lately (for
 * `order-callbacks partners`). One hash tag for the queue: a few small keys, written on transitions only.
 * The partner's own state (PartnerStore) is the truth; this is a copy that a newer version always wins.
 */
export interface PartnerDirectory {
  /**
   * Records a partner's state after a transition; an older state than the one recorded (begun earlier,
   * or at the same moment with a lower version) is ignored.
   */
  note(origin: string, state: PartnerState): Promise<void>;
  /** Marks a partner as seen now. */
  seen(origins: string[]): Promise<void>;
  /** The partners that are not closed, as last noted, and the store's clock. */
  notClosed(): Promise<{ now: number; states: Map<string, PartnerState> }>;
  /** Partners seen since `sinceMs` ago, newest first. */
  recent(sinceMs: number): Promise<string[]>;
}

/** Partners not seen for this long are dropped from the seen index. */
const SEEN_KEPT_MS = 7 * 86_400_000;

// A state is newer when it began later (its store's clock), or began at the same moment with a higher
// version: a partner's state that expired and started again at version 0 is still newer than the
// states it had before.
const NOTE = `local since, version = tonumber(ARGV[4]), tonumber(ARGV[2])
local stored = redis.call('HGET', KEYS[2], ARGV[1])
if stored then
  local s, v = string.match(stored, '^(%d+):(%d+)$')
  if since < tonumber(s) or (since == tonumber(s) and version <= tonumber(v)) then return 0 end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4] .. ':' .. ARGV[2])
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1`;

const NOT_CLOSED = `local t = redis.call('TIME')
return { tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), redis.call('HGETALL', KEYS[1]) }`;

const SEEN = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
return now`;

const RECENT = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', now - tonumber(ARGV[1]))`;

interface DirectoryScripts {
  partnerNote(held: string, versions: string, origin: string, version: number, state: string, since: number): Promise<number>;
  partnerNotClosed(held: string): Promise<[number, string[]]>;
  partnerSeen(seen: string, keptMs: number, ...origins: string[]): Promise<number>;
  partnerRecent(seen: string, sinceMs: number): Promise<string[]>;
}

export function directoryKeys(queueName: string): { held: string; versions: string; seen: string } {
  const tag = `oc:{${queueName}}:partners`;
  return { held: `${tag}:not-closed`, versions: `${tag}:versions`, seen: `${tag}:seen` };
}

export class RedisPartnerDirectory implements PartnerDirectory {
  private readonly redis: (Redis | Cluster) & DirectoryScripts;
  private readonly keys: ReturnType<typeof directoryKeys>;

  constructor(redis: Redis | Cluster, queueName: string) {
    if (!('partnerNote' in redis)) {
      redis.defineCommand('partnerNote', { numberOfKeys: 2, lua: NOTE });
      redis.defineCommand('partnerNotClosed', { numberOfKeys: 1, lua: NOT_CLOSED });
      redis.defineCommand('partnerSeen', { numberOfKeys: 1, lua: SEEN });
      redis.defineCommand('partnerRecent', { numberOfKeys: 1, lua: RECENT });
    }
    this.redis = redis as (Redis | Cluster) & DirectoryScripts;
    this.keys = directoryKeys(queueName);
  }

  async note(origin: string, state: PartnerState): Promise<void> {
    await this.redis.partnerNote(
      this.keys.held,
      this.keys.versions,
      origin,
      state.version,
      state.state === 'closed' ? '' : JSON.stringify(state),
      Math.max(0, Math.round(state.since)),
    );
  }

  async seen(origins: string[]): Promise<void> {
    if (origins.length > 0) await this.redis.partnerSeen(this.keys.seen, SEEN_KEPT_MS, ...origins);
  }

  async notClosed(): Promise<{ now: number; states: Map<string, PartnerState> }> {
    const [now, flat] = await this.redis.partnerNotClosed(this.keys.held);
    const states = new Map<string, PartnerState>();
    for (let i = 0; i < flat.length; i += 2) states.set(flat[i], JSON.parse(flat[i + 1]) as PartnerState);
    return { now: Number(now), states };
  }

  async recent(sinceMs: number): Promise<string[]> {
    return this.redis.partnerRecent(this.keys.seen, sinceMs);
  }
}

/** Milliseconds since the epoch that never step back with the wall clock: the local store's clock. */
export function monotonicEpochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The directory of this process alone: what it knows when Redis cannot be asked. */
export class LocalPartnerDirectory implements PartnerDirectory {
  private readonly states = new Map<string, PartnerState>();
  private readonly lastSeen = new Map<string, number>();

  constructor(private readonly clock: () => number = monotonicEpochMs) {}

  async note(origin: string, state: PartnerState): Promise<void> {
    const stored = this.states.get(origin);
    if (stored && (state.since < stored.since || (state.since === stored.since && state.version <= stored.version))) return;
    this.states.set(origin, state);
  }

  async seen(origins: string[]): Promise<void> {
    for (const origin of origins) this.lastSeen.set(origin, this.clock());
  }

  async notClosed(): Promise<{ now: number; states: Map<string, PartnerState> }> {
    return { now: this.clock(), states: new Map([...this.states].filter(([, s]) => s.state !== 'closed')) };
  }

  async recent(sinceMs: number): Promise<string[]> {
    const from = this.clock() - sinceMs;
    return [...this.lastSeen]
      .filter(([, at]) => at >= from)
      .sort((a, b) => b[1] - a[1])
      .map(([origin]) => origin);
  }
}
