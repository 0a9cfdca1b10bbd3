import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors/config-error';
import { describeRedis } from '../../src/queue/redis-topology';

const SECRET = `whsec_${Buffer.from('0123456789abcdef0123').toString('base64')}`;

function errorOf(env: Record<string, string>, requireSecret = false): string {
  try {
    loadConfig(env, { requireSecret });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('gives the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/order_callbacks',
      redisUrl: 'redis://127.0.0.1:6379',
      queueName: 'order-callbacks',
      workerConcurrency: 200,
      pollIntervalMs: 1000,
      callbackTimeoutMs: 10_000,
      maxPayloadBytes: 262_144,
      logLevel: 'info',
      claimTtlMs: 25_000,
      jobLockMs: 25_000,
      shutdownGraceMs: 15_000,
      databasePoolMax: 10,
    });
    expect(config.partnerRules).toEqual({
      maxInFlight: 64,
      failureRate: 0.9,
      minAttempts: 20,
      windowMs: 30_000,
      probes: 3,
      cooldownMs: 30_000,
      maxCooldownMs: 600_000,
      maxPauseMs: 3_600_000,
    });
    expect(config.retry).toEqual({
      kind: 'schedule',
      delaysMs: [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
    });
    expect(config.maxAttempts).toBe(8);
    expect([...config.finalStatuses]).toEqual([400, 404, 410, 413, 422]);
    expect(config.deprecations).toEqual([]);
    expect(config.signingKey).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('caps a partner at 64 in flight by default, or at WORKER_CONCURRENCY when that is lower', () => {
    expect(loadConfig({ WORKER_CONCURRENCY: '10' }).partnerRules.maxInFlight).toBe(10);
    expect(loadConfig({ WORKER_CONCURRENCY: '500', HOST_MAX_IN_FLIGHT: '300' }).partnerRules.maxInFlight).toBe(300);
  });

  it('reads BREAKER_FAILURE_THRESHOLD, from before the rate-based breaker, as the minimum volume, and says so', () => {
    const old = loadConfig({ BREAKER_FAILURE_THRESHOLD: '1000000' });
    expect(old.partnerRules.minAttempts).toBe(1_000_000); // a breaker turned off stays off
    expect(old.deprecations).toEqual([expect.stringMatching(/^BREAKER_FAILURE_THRESHOLD is read as BREAKER_MIN_ATTEMPTS/)]);
    expect(loadConfig({ BREAKER_FAILURE_THRESHOLD: '5', BREAKER_MIN_ATTEMPTS: '40' }).partnerRules.minAttempts).toBe(40);
  });

  it('refuses a failure rate outside 0.5-1 and names the variable', () => {
    expect(() => loadConfig({ BREAKER_FAILURE_RATE: '0.2' })).toThrow(/BREAKER_FAILURE_RATE/);
    expect(() => loadConfig({ BREAKER_FAILURE_RATE: 'most' })).toThrow(/BREAKER_FAILURE_RATE/);
  });

  it('decodes the signing key from the part after whsec_', () => {
    expect(loadConfig({ CALLBACK_SECRET: SECRET }).signingKey?.toString()).toBe('0123456789abcdef0123');
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ WORKER_CONCURRENCY: '', CALLBACK_ALLOW_PRIVATE: '' }).workerConcurrency).toBe(200);
  });

  it.each([
    ['WORKER_CONCURRENCY', 'abc'],
    ['WORKER_CONCURRENCY', '0'],
    ['POLL_INTERVAL_MS', '-1'],
    ['CALLBACK_TIMEOUT_MS', '1.5'],
    ['DATABASE_URL', 'mysql://x'],
    ['REDIS_URL', 'not a url'],
    ['CALLBACK_SECRET', 'nope'],
    ['CALLBACK_SECRET', `whsec_${Buffer.from('short').toString('base64')}`],
    ['CALLBACK_ALLOW_PRIVATE', 'maybe'],
    ['LOG_LEVEL', 'loud'],
    ['QUEUE_NAME', 'has spaces'],
    ['CALLBACK_ALLOWED_CIDRS', '10.0.0.0/8, not-a-range'],
    ['CALLBACK_ALLOWED_PORTS', '443,70000'],
    ['CALLBACK_ALLOWED_PORTS', 'https'],
    ['MAX_PAYLOAD_BYTES', '10'],
    ['METRICS_PORT', '99999'],
    ['PARTNER_RATE_LIMITS', 'api.example.com'],
    ['PARTNER_RATE_LIMITS', 'api.example.com=0'],
    ['PARTNER_RATE_LIMITS', 'api.example.com=ten'],
    ['PARTNER_RATE_LIMITS', 'api.example.com:8443=10'],
    ['PARTNER_RATE_LIMITS', 'https://api.example.com=10'],
    ['PARTNER_RATE_LIMITS', 'a.example=1,A.example=2'],
  ])('%s=%s stops the start with a message naming the variable', (name, value) => {
    expect(errorOf({ [name]: value })).toMatch(new RegExp(`^${name}: |; ${name}: `));
  });

  it('reads per-partner rate limits by host name, as a callback URL spells it', () => {
    const limits = loadConfig({ PARTNER_RATE_LIMITS: ' API.Example.com = 50 , bücher.example=5,127.0.0.1=20' }).partnerRateLimits;
    expect([...limits]).toEqual([
      ['api.example.com', 50],
      ['xn--bcher-kva.example', 5],
      ['127.0.0.1', 20],
    ]);
    expect(loadConfig({}).partnerRateLimits.size).toBe(0);
  });

  it('names every bad variable at once', () => {
    const message = errorOf({ WORKER_CONCURRENCY: 'x', LOG_LEVEL: 'y' });
    expect(message).toMatch(/WORKER_CONCURRENCY/);
    expect(message).toMatch(/LOG_LEVEL/);
  });

  it('requires CALLBACK_SECRET where callbacks are signed', () => {
    expect(errorOf({}, true)).toMatch(/^CALLBACK_SECRET: required/);
    expect(loadConfig({ CALLBACK_SECRET: SECRET }, { requireSecret: true }).signingKey).toBeDefined();
  });

  it('retries on RETRY_SCHEDULE when set, and with exponential backoff when any of its settings is', () => {
    expect(loadConfig({ RETRY_SCHEDULE: '5s, 1m,2h' }).retry).toEqual({ kind: 'schedule', delaysMs: [5000, 60_000, 7_200_000] });
    expect(loadConfig({ RETRY_SCHEDULE: '5s,1m,2h' }).maxAttempts).toBe(4);
    expect(loadConfig({ MAX_ATTEMPTS: '3' }).retry).toEqual({ kind: 'exponential', maxAttempts: 3, baseMs: 1000, maxMs: 3_600_000 });
    expect(loadConfig({ RETRY_BASE_MS: '200' }).retry).toEqual({ kind: 'exponential', maxAttempts: 10, baseMs: 200, maxMs: 3_600_000 });
  });

  it("caps a partner's Retry-After pause at PARTNER_MAX_PAUSE_MS, else RETRY_MAX_MS, else 1 h", () => {
    expect(loadConfig({}).partnerRules.maxPauseMs).toBe(3_600_000);
    expect(loadConfig({ RETRY_MAX_MS: '7200000' }).partnerRules.maxPauseMs).toBe(7_200_000);
    expect(loadConfig({ RETRY_SCHEDULE: '5s', PARTNER_MAX_PAUSE_MS: '600000' }).partnerRules.maxPauseMs).toBe(600_000);
    expect(loadConfig({ RETRY_SCHEDULE: '5s', PARTNER_MAX_PAUSE_MS: '600000' }).retry.kind).toBe('schedule');
  });

  it("refuses a linger that would eat the claim's margin, naming the variable", () => {
    expect(errorOf({ CALLBACK_TIMEOUT_MS: '1000', CLAIM_TTL_MS: '2500', WORKER_BATCH_LINGER_MS: '500' })).toMatch(
      /WORKER_BATCH_LINGER_MS: CLAIM_TTL_MS must exceed/,
    );
    expect(loadConfig({ CALLBACK_TIMEOUT_MS: '1000', CLAIM_TTL_MS: '3000', WORKER_BATCH_LINGER_MS: '500' }).batchLingerMs).toBe(500);
  });

  it('refuses a schedule combined with exponential settings, or one it cannot read, naming the variables', () => {
    expect(errorOf({ RETRY_SCHEDULE: '5s', MAX_ATTEMPTS: '3' })).toMatch(/RETRY_SCHEDULE: cannot be combined with MAX_ATTEMPTS/);
    expect(errorOf({ RETRY_SCHEDULE: '5 minutes' })).toMatch(/RETRY_SCHEDULE: "5 minutes" is not a duration/);
    expect(errorOf({ RETRY_SCHEDULE: '500ms' })).toMatch(/RETRY_SCHEDULE: each delay must be between 1s and 7d/);
    expect(errorOf({ FINAL_STATUSES: '404,4xx' })).toMatch(/FINAL_STATUSES: "4xx"/);
  });

  it('refuses a retry ceiling below the base, and a claim that does not outlive the callback timeout', () => {
    expect(errorOf({ RETRY_BASE_MS: '5000', RETRY_MAX_MS: '1000' })).toMatch(/RETRY_MAX_MS/);
    expect(errorOf({ CALLBACK_TIMEOUT_MS: '10000', CLAIM_TTL_MS: '10500' })).toMatch(/CLAIM_TTL_MS/);
  });

  it('derives the claim, the queue lease, the job lock and the grace period from the callback timeout', () => {
    const config = loadConfig({ CALLBACK_TIMEOUT_MS: '2000' });
    expect(config.claimTtlMs).toBe(9000);
    expect(config.queueLeaseMs).toBe(14000);
    expect(config.jobLockMs).toBe(9000);
    expect(config.shutdownGraceMs).toBe(7000);
    expect(loadConfig({ JOB_LOCK_MS: '1000' }).jobLockMs).toBe(1000);
    expect(loadConfig({ QUEUE_LEASE_MS: '90000' }).queueLeaseMs).toBe(90000);
    expect(loadConfig({ CALLBACK_TIMEOUT_MS: '600000' }).queueLeaseMs).toBe(60000); // at most a minute by default
  });

  it.each([
    ['true', true],
    ['1', true],
    ['YES', true],
    ['false', false],
    ['0', false],
  ])('CALLBACK_ALLOW_PRIVATE=%s is %s', (value, expected) => {
    expect(loadConfig({ CALLBACK_ALLOW_PRIVATE: value }).destinations.allowPrivate).toBe(expected);
  });
});

describe('destinations', () => {
  it('allow ports 80 and 443 only, unless told otherwise; any port when private destinations are allowed', () => {
    expect([...(loadConfig({}).destinations.allowedPorts ?? [])]).toEqual([80, 443]);
    expect([...(loadConfig({ CALLBACK_ALLOWED_PORTS: '443, 8443' }).destinations.allowedPorts ?? [])]).toEqual([443, 8443]);
    expect(loadConfig({ CALLBACK_ALLOWED_PORTS: '*' }).destinations.allowedPorts).toBeUndefined();
    expect(loadConfig({ CALLBACK_ALLOW_PRIVATE: 'true' }).destinations.allowedPorts).toBeUndefined();
  });

  it('parse the CIDR allow-list', () => {
    const ranges = loadConfig({ CALLBACK_ALLOWED_CIDRS: '10.20.0.0/16, fd00::/8' }).destinations.allowedRanges;
    expect(ranges.map(([address, bits]) => `${address.toString()}/${bits}`)).toEqual(['10.20.0.0/16', 'fd00::/8']);
  });
});

describe('where Redis is', () => {
  it('is one server at REDIS_URL unless a cluster or sentinels are named', () => {
    expect(loadConfig({ REDIS_URL: 'redis://:pw@10.0.0.5:6380/2' }).redis).toEqual({ kind: 'single', url: 'redis://:pw@10.0.0.5:6380/2' });
  });

  it('reads a cluster from its seeds, with credentials and TLS from REDIS_URL', () => {
    const { redis } = loadConfig({
      REDIS_CLUSTER_NODES: 'r1.internal:7000, 10.0.0.2:7001,[::1]:7002',
      REDIS_URL: 'rediss://app:s%40cret@ignored:1',
    });
    expect(redis).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'r1.internal', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      auth: { username: 'app', password: 's@cret', db: 0, tls: true },
    });
  });

  it('reads a Sentinel set-up from its sentinels and master group name', () => {
    const { redis } = loadConfig({
      REDIS_SENTINELS: '127.0.0.1:26379,127.0.0.1:26380',
      REDIS_SENTINEL_NAME: 'mymaster',
      REDIS_SENTINEL_PASSWORD: 'sp',
      REDIS_URL: 'redis://:pw@x/3',
    });
    expect(redis).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: '127.0.0.1', port: 26379 },
        { host: '127.0.0.1', port: 26380 },
      ],
      name: 'mymaster',
      auth: { username: undefined, password: 'pw', db: 3, tls: false },
      sentinelPassword: 'sp',
    });
  });

  it('names the variable of every mistake in the topology', () => {
    expect(errorOf({ REDIS_CLUSTER_NODES: '127.0.0.1' })).toContain('REDIS_CLUSTER_NODES: "127.0.0.1" is not host:port');
    expect(errorOf({ REDIS_CLUSTER_NODES: '127.0.0.1:70000' })).toContain('REDIS_CLUSTER_NODES: "127.0.0.1:70000" is not host:port');
    expect(errorOf({ REDIS_CLUSTER_NODES: ' , ' })).toContain('REDIS_CLUSTER_NODES: must list at least one host:port');
    expect(errorOf({ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 'b:2', REDIS_SENTINEL_NAME: 'm' })).toContain(
      'REDIS_CLUSTER_NODES: set either it or REDIS_SENTINELS, not both',
    );
    expect(errorOf({ REDIS_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://h:1/4' })).toContain('REDIS_URL: a Redis Cluster has only database 0');
    expect(errorOf({ REDIS_SENTINELS: 'a:1' })).toContain('REDIS_SENTINEL_NAME: required with REDIS_SENTINELS');
    expect(errorOf({ REDIS_SENTINEL_NAME: 'm' })).toContain('REDIS_SENTINEL_NAME: needs REDIS_SENTINELS');
  });

  it('never puts a password in the description logged at start', () => {
    const described = [
      loadConfig({ REDIS_URL: 'redis://:hunter2@h:1' }),
      loadConfig({ REDIS_URL: 'redis://:hunter2@h:1', REDIS_CLUSTER_NODES: 'a:1,b:2' }),
      loadConfig({
        REDIS_URL: 'redis://:hunter2@h:1',
        REDIS_SENTINELS: 'a:1',
        REDIS_SENTINEL_NAME: 'm',
        REDIS_SENTINEL_PASSWORD: 'hunter3',
      }),
    ].map((config) => describeRedis(config.redis));
    expect(described).toEqual([expect.stringContaining('h:1'), 'cluster a:1,b:2', 'sentinel m via a:1']);
    expect(described.join(' ')).not.toMatch(/hunter/);
  });
});
