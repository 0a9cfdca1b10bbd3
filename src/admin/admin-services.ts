import { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import knex, { type Knex } from 'knex';
import type { Client } from 'pg';

import type { Config } from '../config';
import type { Db } from '../db/connection';
import { type ServiceName, ServiceUnreachableError } from '../errors/service-unreachable-error';
import { redactUrl } from '../observability/redact-url';
import type { CallbackJobData } from '../queue/callback-queue';
import { connectRedis, describeRedis, queuePrefix } from '../queue/redis-topology';
import { CallbackQueues } from '../queue/shards';
import { isConnectionFailure, isSessionRefusal } from './connection-failure';
import type { Deadline } from './deadline';

/** A service an admin command could not use, as printed and in --json. */
export interface Unreachable {
  service: ServiceName;
  /** The URL with its password redacted. */
  address: string;
  error: string;
}

/** Statements that run past the command's deadline (requeue's batches) are each bounded by this. */
export const ADMIN_LONG_STATEMENT_TIMEOUT_MS = 60_000;
/** Closing what a command opened may take this long; past it the process ends anyway. */
export const ADMIN_CLOSE_TIMEOUT_MS = 1000;

const QUIET_KNEX_LOG = { warn: () => undefined, error: () => undefined, deprecate: () => undefined, debug: () => undefined };

/**
 * Postgres and Redis for one admin command, each opened on first use and only then, and bounded by the
 * command's deadline: a connection to a port where nothing listens fails at once, one to a host that
 * swallows packets or never answers fails when the deadline comes. Unlike the daemon's connections,
 * nothing here waits for a service to come back: an operator wants the answer, or why there is none.
 */
export class AdminServices {
  /** The services found unreachable by readIfReachable(), in the order found. */
  readonly unreachable: Unreachable[] = [];
  private db?: Knex;
  private dbReached?: Promise<Db>;
  private redis?: Redis | Cluster;
  private redisReached?: Promise<Redis | Cluster>;
  private queues?: Promise<CallbackQueues>;
  private redisError?: Error;

  /**
   * @param statementTimeoutMs - each Postgres statement, on the server and on the client's side.
   * @defaultValue the deadline's length: a command that answers within it needs no longer statement.
   */
  constructor(
    private readonly config: Readonly<Pick<Config, 'databaseUrl' | 'redis' | 'queueName' | 'queueShards'>>,
    readonly deadline: Deadline,
    private readonly statementTimeoutMs = deadline.ms,
  ) {}

  address(service: ServiceName): string {
    return service === 'postgres' ? redactUrl(this.config.databaseUrl) : describeRedis(this.config.redis);
  }

  /** Postgres, once a session on it has answered; ServiceUnreachableError if none does before the deadline. */
  postgres(): Promise<Db> {
    this.dbReached ??= this.reach('postgres', async () => {
      this.db = createAdminDb(this.config.databaseUrl, this.deadline.ms, this.statementTimeoutMs);
      await this.db.raw('SELECT 1');
      return this.db;
    });
    return this.dbReached;
  }

  /** Redis, connected and answering; ServiceUnreachableError if it is not before the deadline. */
  redisClient(): Promise<Redis | Cluster> {
    this.redisReached ??= this.reach('redis', async () => {
      const redis = connectRedis(this.config.redis, {
        lazyConnect: true,
        // One try: a command fails with the reason instead of waiting in a queue for a reconnection.
        retryStrategy: () => null,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        connectTimeout: Math.round(this.deadline.ms),
        commandTimeout: Math.round(this.deadline.ms),
      });
      this.redis = redis;
      // ioredis rejects connect() with "Connection is closed"; the cause comes as an error event.
      redis.on('error', (err: Error) => (this.redisError = err));
      try {
        await redis.connect();
      } catch (err) {
        throw this.redisError ?? err;
      }
      await redis.ping();
      return redis;
    });
    return this.redisReached;
  }

  /** Every shard's callback queue on the admin's Redis connection (BullMQ leaves a connection it was given open). */
  callbackQueues(): Promise<CallbackQueues> {
    this.queues ??= this.redisClient().then(
      (redis) =>
        new CallbackQueues(this.config.queueName, this.config.queueShards, (name) => {
          const queue = new Queue<CallbackJobData>(name, { connection: redis, prefix: queuePrefix(this.config.redis, name) });
          queue.on('error', () => undefined); // every read fails with its reason; the queue's own echo of it is noise
          return queue;
        }),
    );
    return this.queues;
  }

  /**
   * `read()` within the deadline. When the service fails to answer (no connection, a dropped one, the
   * deadline) it rejects with ServiceUnreachableError; an error the service answered with stays as it is.
   */
  async read<T>(service: ServiceName, read: () => Promise<T>): Promise<T> {
    try {
      return await this.deadline.race(read(), () => this.deadline.expiredError());
    } catch (err) {
      throw this.classify(service, err);
    }
  }

  /** As read(), but an unreachable service gives null and is listed in `unreachable`: for a partial answer. */
  async readIfReachable<T>(service: ServiceName, read: () => Promise<T>): Promise<T | null> {
    try {
      return await this.read(service, read);
    } catch (err) {
      if (!(err instanceof ServiceUnreachableError)) throw err;
      if (!this.unreachable.some((u) => u.service === service)) this.unreachable.push({ service, address: err.address, error: err.reason });
      return null;
    }
  }

  /**
   * `work()` on both services within the deadline, once both answered: for a command that interleaves
   * them. A failure of either is named for both, when the driver's error cannot tell which it was.
   */
  async readBoth<T>(work: (db: Db, redis: Redis | Cluster) => Promise<T>): Promise<T> {
    const [db, redis] = await Promise.allSettled([this.postgres(), this.redisClient()]);
    if (db.status === 'rejected' || redis.status === 'rejected') {
      // Both may be down: the second is listed in `unreachable`, for the command to say so too.
      const [first, second] = [db, redis].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      if (second instanceof ServiceUnreachableError && second.service !== 'postgres or redis') {
        this.unreachable.push({ service: second.service, address: second.address, error: second.reason });
      }
      throw first;
    }
    try {
      return await this.deadline.race(work(db.value, redis.value), () => this.deadline.expiredError());
    } catch (err) {
      if (err instanceof Error && (this.deadline.expired || isConnectionFailure(err))) {
        throw new ServiceUnreachableError('postgres or redis', `${this.address('postgres')} or ${this.address('redis')}`, reasonOf(err));
      }
      throw err;
    }
  }

  /** `work()` with no deadline (each statement is bounded instead), its connection failures named: requeue. */
  async unbounded<T>(service: ServiceName, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw err instanceof Error && !(err instanceof ServiceUnreachableError) && isConnectionFailure(err)
        ? new ServiceUnreachableError(service, this.address(service), reasonOf(err))
        : err;
    }
  }

  /**
   * Closes everything opened, all of it even when a part fails. Resolves false when that took longer
   * than ADMIN_CLOSE_TIMEOUT_MS (a session stuck on a silent host): the caller ends the process instead.
   */
  async close(): Promise<boolean> {
    const queues = this.queues?.catch(() => undefined);
    const closing = Promise.allSettled([
      queues?.then((q) => q?.close()),
      this.db?.destroy(),
      Promise.resolve(queues).then(() => this.redis?.disconnect()),
    ]);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ADMIN_CLOSE_TIMEOUT_MS)));
    const closed = await Promise.race([closing.then(() => true), late]);
    clearTimeout(timer);
    this.deadline.end();
    return closed;
  }

  /** Opening a session: no connection, no answer, or a session refused (a wrong password) means the service cannot be used. */
  private async reach<T>(service: ServiceName, open: () => Promise<T>): Promise<T> {
    try {
      return await this.deadline.race(open(), () => this.deadline.expiredError());
    } catch (err) {
      if (err instanceof Error && (this.deadline.expired || isConnectionFailure(err) || isSessionRefusal(err))) {
        throw new ServiceUnreachableError(service, this.address(service), reasonOf(err));
      }
      throw err;
    }
  }

  private classify(service: ServiceName, err: unknown): unknown {
    if (err instanceof ServiceUnreachableError) return err;
    if (err instanceof Error && (this.deadline.expired || isConnectionFailure(err))) {
      return new ServiceUnreachableError(service, this.address(service), reasonOf(err));
    }
    return err;
  }
}

/**
 * A knex pool for one admin command: its connect, statements and pool waits bounded, and quiet (knex
 * would print every failed connection attempt with its stack; the command reports the failure once).
 */
function createAdminDb(databaseUrl: string, connectTimeoutMs: number, statementTimeoutMs: number): Knex {
  return knex({
    client: 'pg',
    connection: {
      connectionString: databaseUrl,
      application_name: 'order-callbacks-admin',
      connectionTimeoutMillis: Math.round(connectTimeoutMs),
      // The client's own bound, for a server that went silent and cannot cancel anything: a little after
      // the server's statement_timeout, so a slow statement is reported as cancelled, not as unanswered.
      query_timeout: Math.round(statementTimeoutMs) + 1000,
      keepAlive: true,
    },
    pool: {
      min: 0,
      max: 2,
      // SET rather than a startup parameter, which PgBouncer refuses.
      afterCreate: (client: Client, done: (err: Error | null, client: Client) => void) => {
        client.query(`SET statement_timeout = ${Math.round(statementTimeoutMs)}`).then(
          () => done(null, client),
          (err: Error) =>
            void client
              .end()
              .catch(() => undefined)
              .then(() => done(err, client)),
        );
      },
    },
    acquireConnectionTimeout: Math.round(connectTimeoutMs),
    log: QUIET_KNEX_LOG,
  });
}

/** The cause in one line, without a password: drivers name host and port, never the credentials. */
function reasonOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err instanceof AggregateError && err.errors.length) return reasonOf(err.errors[0]); // ECONNREFUSED on ::1 and 127.0.0.1
  return (err.message || (err as { code?: string }).code || err.name).split('\n')[0];
}
