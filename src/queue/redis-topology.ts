import type { ConnectionOptions } from 'bullmq';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

import { redactUrl } from '../observability/redact-url';

export interface HostPort {
  host: string;
  port: number;
}

/** What REDIS_URL still gives a cluster or a sentinel set-up: who we are, and whether to use TLS. */
export interface RedisAuth {
  username?: string;
  password?: string;
  /** The database number (a cluster has only 0). */
  db: number;
  tls: boolean;
}

/**
 * Where the daemon's Redis is: one server (REDIS_URL), a Redis Cluster (REDIS_CLUSTER_NODES, seeds the
 * client learns the rest from), or a primary found through Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME).
 */
export type RedisTopology =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: readonly HostPort[]; auth: RedisAuth }
  | { kind: 'sentinel'; sentinels: readonly HostPort[]; name: string; auth: RedisAuth; sentinelPassword?: string };

/** `host:port` or `[v6]:port`, comma-separated; the problem as a string, naming the bad entry. */
export function parseHostPorts(value: string): HostPort[] | string {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) return 'must list at least one host:port';
  const found: HostPort[] = [];
  for (const entry of entries) {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry);
    const port = match ? Number(match[3]) : 0;
    if (!match || port < 1 || port > 65535) return `"${entry}" is not host:port`;
    found.push({ host: match[1] ?? match[2], port });
  }
  return found;
}

/** The credentials, database and TLS choice of a redis:// or rediss:// URL. */
export function authOf(url: string): RedisAuth {
  const parsed = new URL(url);
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0;
  return {
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    tls: parsed.protocol === 'rediss:',
  };
}

/** Where Redis is, for a log line or an error message: addresses only, never a password. */
export function describeRedis(topology: RedisTopology): string {
  const list = (nodes: readonly HostPort[]) =>
    nodes.map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)).join(',');
  switch (topology.kind) {
    case 'single':
      return redactUrl(topology.url);
    case 'cluster':
      return `cluster ${list(topology.nodes)}`;
    case 'sentinel':
      return `sentinel ${topology.name} via ${list(topology.sentinels)}`;
  }
}

/**
 * The prefix of the queue's keys. BullMQ's scripts touch several keys of a queue at once, which a
 * cluster allows only within one hash slot: there the queue's name is the hash tag, so each queue's keys
 * live together and different queues spread over the primaries. One server and Sentinel keep BullMQ's
 * default, so an existing deployment finds its jobs where they were.
 */
export function queuePrefix(topology: RedisTopology, queueName: string): string {
  return topology.kind === 'cluster' ? `bull:{${queueName}}` : 'bull';
}

/**
 * A demoted primary answers writes with READONLY until Sentinel's news reaches the client: reconnect
 * (to the primary Sentinel names now) and send the command again.
 */
const reconnectOnReadonly = (err: Error) => (err.message.startsWith('READONLY') ? 2 : false);

/** ioredis options for a Sentinel set-up: the master group, found again after each failover. */
function sentinelOptions(topology: Extract<RedisTopology, { kind: 'sentinel' }>, options: RedisOptions): RedisOptions {
  const { auth } = topology;
  return {
    ...options,
    sentinels: topology.sentinels.map(({ host, port }) => ({ host, port })),
    name: topology.name,
    role: 'master',
    username: auth.username,
    password: auth.password,
    db: auth.db,
    sentinelPassword: topology.sentinelPassword,
    ...(auth.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    // Subscribes to the sentinels' +switch-master, so a failover is followed at once rather than when
    // the old primary's connection breaks.
    failoverDetector: true,
    reconnectOnError: reconnectOnReadonly,
    // A sentinel that does not answer is skipped after this long, not waited on.
    sentinelCommandTimeout: 2000,
    sentinelMaxConnections: 3,
    // The caller's strategy for the sentinels too: an admin command that tries once gives up on them at once.
    sentinelRetryStrategy: options.retryStrategy ?? ((times: number) => Math.min(100 * 2 ** times, 2000)),
  };
}

/** ioredis Cluster options: the nodes get `options`, with REDIS_URL's credentials and TLS. */
function clusterOptions(topology: Extract<RedisTopology, { kind: 'cluster' }>, options: RedisOptions): ClusterOptions {
  const { auth } = topology;
  const { retryStrategy, ...nodeOptions } = options;
  return {
    redisOptions: {
      ...nodeOptions,
      username: auth.username,
      password: auth.password,
      ...(auth.tls ? { tls: {} } : {}),
    },
    clusterRetryStrategy: retryStrategy ?? ((times: number) => Math.min(100 * 2 ** times, 2000)),
    // The cluster client's own: a lazy one connects on connect(), and one without an offline queue
    // refuses commands until it is ready, as a single server's client would.
    lazyConnect: options.lazyConnect,
    enableOfflineQueue: options.enableOfflineQueue ?? true,
    // Keys are read and written on primaries only: a replica may lag, and BullMQ's scripts write.
    scaleReads: 'master',
    slotsRefreshTimeout: 2000,
    // TLS certificates of managed clusters name the host given, not the address it resolves to.
    ...(auth.tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
  };
}

/**
 * A client for the daemon's own commands (partner state, rate limits, admin). With `commandTimeout` set
 * every command is bounded, on every topology.
 */
export function connectRedis(topology: RedisTopology, options: RedisOptions): Redis | Cluster {
  switch (topology.kind) {
    case 'single':
      return new Redis(topology.url, options);
    case 'sentinel':
      return new Redis(sentinelOptions(topology, options));
    case 'cluster': {
      const cluster = new Cluster(
        topology.nodes.map(({ host, port }) => ({ host, port })),
        clusterOptions(topology, options),
      );
      return options.commandTimeout === undefined ? cluster : boundCommands(cluster, options.commandTimeout);
    }
  }
}

/**
 * A cluster client applies each node's commandTimeout only once a command reaches a node: one queued
 * while the cluster is not ready (connecting, a failover, a slot refresh) would wait without bound. Its
 * timer starts here instead, when the command is sent to the cluster (a command's timer is set once;
 * the node's later one is a no-op).
 */
function boundCommands(cluster: Cluster, timeoutMs: number): Cluster {
  const send = cluster.sendCommand.bind(cluster);
  cluster.sendCommand = ((command, ...rest) => {
    // The cluster sends its offline queue through here when it is ready again: a command that already
    // timed out is not sent late (a rate-limit count or a partner outcome the caller gave up on).
    if (command.isSettled) return command.promise;
    command.setTimeout(timeoutMs);
    return send(command, ...rest);
  }) as Cluster['sendCommand'];
  return cluster;
}

/**
 * BullMQ's `connection` for a queue or a worker: options BullMQ opens its own connections from, or, for
 * a cluster, a Cluster client. BullMQ never closes a client it was given (it only closes the duplicates
 * it makes for a worker's blocking reads), so the caller owns `owned` and disconnects it after the queue
 * or worker is closed.
 */
export function bullConnection(topology: RedisTopology, options: RedisOptions): { connection: ConnectionOptions; owned?: Cluster } {
  switch (topology.kind) {
    case 'single':
      return { connection: { ...options, url: topology.url } as ConnectionOptions };
    case 'sentinel':
      return { connection: sentinelOptions(topology, options) as ConnectionOptions };
    case 'cluster': {
      const cluster = connectRedis(topology, options) as Cluster;
      return { connection: cluster, owned: cluster };
    }
  }
}
