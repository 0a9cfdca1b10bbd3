import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { Redis } from 'ioredis';

import { freePort } from './free-port';
import { PrivateRedis } from './redis-server';
import { waitFor } from './wait-for';

const run = promisify(execFile);

/** One command to one server, on a connection of its own. */
export async function redisCommand(port: number, ...args: (string | number)[]): Promise<unknown> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await client.connect();
    return await client.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    client.disconnect();
  }
}

/**
 * A Redis Cluster of local redis-server processes, primaries only, made with `redis-cli --cluster
 * create`. A node restarted keeps its nodes.conf, so it rejoins with its slots (and no data).
 */
export class LocalRedisCluster {
  private constructor(readonly nodes: PrivateRedis[]) {}

  static async start(primaries = 3): Promise<LocalRedisCluster> {
    const nodes: PrivateRedis[] = [];
    try {
      for (let i = 0; i < primaries; i++) {
        nodes.push(
          await PrivateRedis.start(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']),
        );
      }
      await run(
        'redis-cli',
        ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
        { timeout: 30_000 },
      );
      const cluster = new LocalRedisCluster(nodes);
      await cluster.waitUntilOk();
      return cluster;
    } catch (err) {
      await Promise.allSettled(nodes.map((n) => n.stop()));
      throw err;
    }
  }

  /** REDIS_CLUSTER_NODES: every node as a seed. */
  get seeds(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  async waitUntilOk(timeoutMs = 20_000): Promise<void> {
    for (const node of this.nodes) {
      await waitFor(
        `cluster state ok on ${node.port}`,
        async () => String(await redisCommand(node.port, 'CLUSTER', 'INFO').catch(() => '')).includes('cluster_state:ok'),
        timeoutMs,
      );
    }
  }

  /** The node that holds `key`'s slot. */
  async ownerOf(key: string): Promise<PrivateRedis> {
    const slot = Number(await redisCommand(this.nodes[0].port, 'CLUSTER', 'KEYSLOT', key));
    const ranges = (await redisCommand(this.nodes[0].port, 'CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const owner = ranges.find(([from, to]) => slot >= from && slot <= to);
    const node = this.nodes.find((n) => n.port === owner?.[2][1]);
    if (!node) throw new Error(`no node holds slot ${slot}`);
    return node;
  }

  /** How many keys each node holds that match `pattern`, by port. */
  async keysByNode(pattern: string): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    for (const node of this.nodes) counts.set(node.port, ((await redisCommand(node.port, 'KEYS', pattern)) as string[]).length);
    return counts;
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.nodes.map((n) => n.stop()));
  }
}

/**
 * A primary, one replica and three sentinels watching them under the name `name`, all local processes.
 * Sentinels judge a primary down after a second; `failover()` asks for one at once.
 */
export class LocalSentinelSet {
  readonly name = 'oc-primary';
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'oc-sentinel-'));
  private readonly sentinels: { port: number; process: ChildProcess }[] = [];

  private constructor(readonly servers: PrivateRedis[]) {}

  static async start(): Promise<LocalSentinelSet> {
    const primary = await PrivateRedis.start();
    const set = new LocalSentinelSet([primary]);
    try {
      set.servers.push(await PrivateRedis.start(['--replicaof', '127.0.0.1', String(primary.port)]));
      for (let i = 0; i < 3; i++) await set.startSentinel(primary.port, i);
      // A sentinel learns of replicas from the primary's INFO, which it reads every few seconds.
      for (const { port } of set.sentinels) {
        await waitFor(
          `sentinel ${port} to see the replica`,
          async () => ((await redisCommand(port, 'SENTINEL', 'REPLICAS', set.name)) as unknown[]).length === 1,
          20_000,
        );
      }
      return set;
    } catch (err) {
      await set.stop();
      throw err;
    }
  }

  private async startSentinel(primaryPort: number, i: number): Promise<void> {
    const port = await freePort();
    const conf = path.join(this.dir, `sentinel-${i}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${this.dir}`,
        `sentinel monitor ${this.name} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${this.name} 1000`,
        `sentinel failover-timeout ${this.name} 5000`,
        `sentinel parallel-syncs ${this.name} 1`,
        '',
      ].join('\n'),
    );
    const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    this.sentinels.push({ port, process: child });
    await waitFor(
      `sentinel on ${port}`,
      () =>
        redisCommand(port, 'PING').then(
          () => true,
          () => false,
        ),
      10_000,
    );
  }

  /** REDIS_SENTINELS. */
  get addresses(): string {
    return this.sentinels.map(({ port }) => `127.0.0.1:${port}`).join(',');
  }

  /** The port of the server the sentinels call primary now. */
  async primaryPort(): Promise<number> {
    const [, port] = (await redisCommand(this.sentinels[0].port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name)) as [string, string];
    return Number(port);
  }

  /** SENTINEL FAILOVER, then waits until the old replica answers as the primary. */
  async failover(): Promise<number> {
    const before = await this.primaryPort();
    await redisCommand(this.sentinels[0].port, 'SENTINEL', 'FAILOVER', this.name);
    await waitFor('a new primary', async () => (await this.primaryPort()) !== before, 20_000);
    const after = await this.primaryPort();
    await waitFor('the new primary to take writes', async () => String(await redisCommand(after, 'ROLE'))?.startsWith('master'), 20_000);
    return after;
  }

  async stop(): Promise<void> {
    for (const { process: child } of this.sentinels) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
    }
    await Promise.allSettled(this.servers.map((s) => s.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
