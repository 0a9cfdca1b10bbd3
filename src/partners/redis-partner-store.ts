import type { Cluster, Redis } from 'ioredis';

import type { PartnerState } from './partner-circuit';
import {
  type ExchangeRequest,
  type PartnerStore,
  type Snapshot,
  stateFromHash,
  stateToHash,
  type StoreTimings,
  type TransitionResult,
} from './partner-store';

/**
 * A partner's keys. One hash tag per partner (queue and origin), so that every script's keys live in
 * one slot of a Redis Cluster; the origin is URI-encoded, so it cannot close the tag early.
 */
export function partnerKeys(queueName: string, origin: string): [state: string, slots: string, window: string] {
  const tag = `oc:{${queueName}|${encodeURIComponent(origin)}}`;
  return [`${tag}:state`, `${tag}:slots`, `${tag}:window`];
}

// Redis' clock in milliseconds: one clock for every replica. Scripts are replicated by their effects
// (Redis 7), so reading TIME before writing is allowed.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * KEYS: state (hash), slots (sorted set: slot id -> lease end), window (hash: a<bucket>/f<bucket> ->
 * attempts/failures). ARGV: lease, window, bucket, keep (ms); attempts, failures, healthy answers, their
 * total ms, last error; probe version, probes ok, probes failed; want version, not before, limit; counts
 * of release, renew and want ids, then the ids in that order.
 * Answers: now, granted, slots taken, window attempts, window failures, the state hash (flat).
 */
const EXCHANGE = `${NOW}
local lease, windowMs, bucketMs, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local nRelease, nRenew, nWant = tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18])
local leaseEnd = now + lease
local i = 19
if nRelease > 0 then redis.call('ZREM', KEYS[2], unpack(ARGV, i, i + nRelease - 1)) end
i = i + nRelease
for j = i, i + nRenew - 1 do redis.call('ZADD', KEYS[2], 'XX', leaseEnd, ARGV[j]) end
i = i + nRenew
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)

local attempts, failures = tonumber(ARGV[5]), tonumber(ARGV[6])
if attempts > 0 then
  local b = math.floor(now / bucketMs)
  redis.call('HINCRBY', KEYS[3], 'a' .. b, attempts)
  if failures > 0 then redis.call('HINCRBY', KEYS[3], 'f' .. b, failures) end
  redis.call('PEXPIRE', KEYS[3], windowMs + bucketMs)
end
local oldest = math.floor((now - windowMs) / bucketMs)
local wa, wf = 0, 0
local fields = redis.call('HGETALL', KEYS[3])
for k = 1, #fields, 2 do
  local name = fields[k]
  if tonumber(string.sub(name, 2)) < oldest then redis.call('HDEL', KEYS[3], name)
  elseif string.sub(name, 1, 1) == 'a' then wa = wa + tonumber(fields[k + 1])
  else wf = wf + tonumber(fields[k + 1]) end
end

local healthy = tonumber(ARGV[7])
if healthy > 0 then
  local sample = tonumber(ARGV[8]) / healthy
  local before = tonumber(redis.call('HGET', KEYS[1], 'answerMs') or '')
  local smoothed = sample
  if before then smoothed = before + 0.2 * (sample - before) end
  redis.call('HSET', KEYS[1], 'answerMs', math.floor(smoothed), 'lastOkAt', now)
end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'lastError', ARGV[9], 'lastErrorAt', now) end

local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[10]) == version then
  if tonumber(ARGV[11]) > 0 then redis.call('HINCRBY', KEYS[1], 'probesOk', ARGV[11]) end
  if tonumber(ARGV[12]) > 0 then redis.call('HINCRBY', KEYS[1], 'probesFailed', ARGV[12]) end
end
local granted = 0
if nWant > 0 and tonumber(ARGV[13]) == version and now >= tonumber(ARGV[14]) then
  granted = math.max(0, math.min(nWant, tonumber(ARGV[15]) - redis.call('ZCARD', KEYS[2])))
  for j = i, i + granted - 1 do redis.call('ZADD', KEYS[2], leaseEnd, ARGV[j]) end
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], lease * 2) end
local name = redis.call('HGET', KEYS[1], 'state')
if (name == false or name == 'closed') and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], keep) end
return { now, granted, redis.call('ZCARD', KEYS[2]), wa, wf, redis.call('HGETALL', KEYS[1]) }`;

/**
 * KEYS: state, window. ARGV: expected version, clear the window (1/0), keep ms, then the new state's
 * fields: state, until as ms from now (0: no end), cooldownMs, reason, actor.
 * Answers: applied (1/0), now, the state hash (flat). A held or open partner's state is kept until it
 * closes; a closed one's goes after `keep` without exchanges.
 */
const TRANSITION = `${NOW}
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[1]) then return { 0, now, redis.call('HGETALL', KEYS[1]) } end
local untilIn = tonumber(ARGV[5])
local untilAt = 0
if untilIn > 0 then untilAt = now + untilIn end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'version', version + 1, 'since', now, 'until', untilAt,
  'cooldownMs', ARGV[6], 'reason', ARGV[7], 'actor', ARGV[8], 'probesOk', 0, 'probesFailed', 0)
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
if ARGV[4] == 'closed' then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3])) else redis.call('PERSIST', KEYS[1]) end
return { 1, now, redis.call('HGETALL', KEYS[1]) }`;

type RedisLike = Redis | Cluster;
type ExchangeReply = [number, number, number, number, number, string[]];
type TransitionReply = [number, number, string[]];

interface PartnerScripts {
  partnerExchange(state: string, slots: string, window: string, ...args: (string | number)[]): Promise<ExchangeReply>;
  partnerTransition(state: string, window: string, ...args: (string | number)[]): Promise<TransitionReply>;
}

const hashOf = (flat: string[]) => {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
};

/** Errors go no longer than this into the store: it is shown to people, not parsed. */
const MAX_ERROR_CHARS = 300;

/** The shared store: every replica's view of a partner is the same, on Redis' clock. */
export class RedisPartnerStore implements PartnerStore {
  readonly shared = true;
  private readonly redis: RedisLike & PartnerScripts;

  constructor(
    redis: RedisLike,
    private readonly queueName: string,
    private readonly timings: StoreTimings,
    private readonly defaultCooldownMs: number,
  ) {
    // defineCommand sends EVALSHA and falls back to EVAL once after a restart (NOSCRIPT).
    if (!('partnerExchange' in redis)) {
      redis.defineCommand('partnerExchange', { numberOfKeys: 3, lua: EXCHANGE });
      redis.defineCommand('partnerTransition', { numberOfKeys: 2, lua: TRANSITION });
    }
    this.redis = redis as RedisLike & PartnerScripts;
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async exchange(origin: string, r: ExchangeRequest): Promise<Snapshot> {
    const [state, slots, window] = partnerKeys(this.queueName, origin);
    const { slotLeaseMs, windowMs, bucketMs, keepMs } = this.timings;
    const o = r.outcomes;
    const reply = await this.redis.partnerExchange(
      state,
      slots,
      window,
      slotLeaseMs,
      windowMs,
      bucketMs,
      keepMs,
      o.attempts,
      o.failures,
      o.healthy,
      Math.round(o.healthyMs),
      (o.lastError ?? '').slice(0, MAX_ERROR_CHARS),
      r.probes.version,
      r.probes.ok,
      r.probes.failed,
      r.want.version,
      Math.ceil(r.want.notBefore),
      r.want.limit,
      r.release.length,
      r.renew.length,
      r.want.ids.length,
      ...r.release,
      ...r.renew,
      ...r.want.ids,
    );
    const [now, granted, inFlight, attempts, failures, flat] = reply;
    const parsed = stateFromHash(hashOf(flat), this.defaultCooldownMs);
    return {
      now: Number(now),
      granted: Number(granted),
      inFlight: Number(inFlight),
      state: parsed.state,
      tallies: { attempts: Number(attempts), failures: Number(failures), ...parsed.tallies },
      answers: parsed.answers,
      lastError: parsed.lastError,
    };
  }

  async transition(origin: string, expectedVersion: number, to: PartnerState, clearWindow: boolean): Promise<TransitionResult> {
    const [state, , window] = partnerKeys(this.queueName, origin);
    const fields = stateToHash(to);
    const untilIn = to.until > 0 ? Math.max(1, to.until - to.since) : 0;
    const [applied, now, flat] = await this.redis.partnerTransition(
      state,
      window,
      expectedVersion,
      clearWindow ? 1 : 0,
      this.timings.keepMs,
      fields.state,
      untilIn,
      fields.cooldownMs,
      fields.reason,
      fields.actor,
    );
    return { applied: Number(applied) === 1, now: Number(now), state: stateFromHash(hashOf(flat), this.defaultCooldownMs).state };
  }
}
