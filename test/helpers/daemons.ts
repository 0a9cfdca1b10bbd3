import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';

import { type Daemon, type DaemonRole, startDaemon } from '../../src/daemon';
import { SHARED_REDIS_URL } from './queue';
import { waitFor } from './wait-for';

export const CLI = path.join(__dirname, '..', '..', 'dist', 'cli.js');

/** A 24-byte key in the Standard Webhooks format, fixed so tests can verify signatures. */
export const TEST_SECRET = `whsec_${Buffer.from('order-callbacks-test-key!').toString('base64')}`;

/**
 * The environment of a test's daemon or admin command: its database, its queue, and the shared Redis
 * (another Redis with REDIS_URL in `extra`). `extra` adds or overrides.
 */
export function daemonEnv(databaseUrl: string, queueName: string, extra: Record<string, string> = {}): Record<string, string> {
  return { DATABASE_URL: databaseUrl, REDIS_URL: SHARED_REDIS_URL, QUEUE_NAME: queueName, ...extra };
}

/**
 * What every delivering daemon in a test needs: daemonEnv on `redisUrl`, a partner on 127.0.0.1 (so
 * private destinations are allowed), and a short poll. `extra` adds or overrides.
 */
export function deliveryEnv(
  databaseUrl: string,
  queueName: string,
  redisUrl: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return daemonEnv(databaseUrl, queueName, { REDIS_URL: redisUrl, CALLBACK_ALLOW_PRIVATE: 'true', POLL_INTERVAL_MS: '100', ...extra });
}

/**
 * Short claims, leases and retries, so that recovery after a crash or a lost Redis happens within a
 * test's patience.
 */
export const FAST_RECOVERY: Readonly<Record<string, string>> = {
  CALLBACK_ALLOW_PRIVATE: 'true',
  POLL_INTERVAL_MS: '100',
  CALLBACK_TIMEOUT_MS: '1000',
  CLAIM_TTL_MS: '3000',
  QUEUE_LEASE_MS: '3000',
  RETRY_BASE_MS: '50',
  RETRY_MAX_MS: '200',
  MAX_ATTEMPTS: '50',
  WORKER_CONCURRENCY: '20',
};

/** Log lines as parsed JSON, read through a real stream the way pino writes them. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) this.lines.push(JSON.parse(line));
    }
    done();
  }
}

export interface InProcessDaemon extends Daemon {
  logs: LogSink;
}

const running = new Set<{ stop(): Promise<unknown> }>();

/** A daemon in this process, with its logs captured; stopped by stopAllDaemons() if the test forgets. */
export async function startTestDaemon(role: DaemonRole, env: Record<string, string>, workerId = 'test-worker'): Promise<InProcessDaemon> {
  const logs = new LogSink();
  const daemon = await startDaemon(role, { LOG_LEVEL: 'debug', CALLBACK_SECRET: TEST_SECRET, ...env }, { logDestination: logs, workerId });
  const tracked = { stop: () => daemon.stop() };
  running.add(tracked);
  return {
    ...daemon,
    logs,
    stop: async () => {
      running.delete(tracked);
      await daemon.stop();
    },
  };
}

export class ChildDaemon {
  readonly lines: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private buffer = '';

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (data: string) => {
      this.buffer += data;
      const parts = this.buffer.split('\n');
      this.buffer = parts.pop()!;
      for (const line of parts) {
        if (!line.trim()) continue;
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          this.lines.push({ msg: line });
        }
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (data: string) => this.stderr.push(data));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  waitForLog(what: string, match: (line: Record<string, unknown>) => boolean, timeoutMs = 30_000) {
    return waitFor(what, () => this.lines.find(match), timeoutMs);
  }

  signal(signal: NodeJS.Signals): void {
    process.kill(this.pid, signal);
  }
}

const children = new Set<ChildDaemon>();

/** `node dist/cli.js <role>` as a real child process; killed by stopAllDaemons() at the latest. */
export async function spawnDaemon(role: DaemonRole, env: Record<string, string>): Promise<ChildDaemon> {
  const child = spawn(process.execPath, [CLI, role], {
    env: { PATH: process.env.PATH, LOG_LEVEL: 'debug', CALLBACK_SECRET: TEST_SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const daemon = new ChildDaemon(child);
  children.add(daemon);
  void daemon.exited.then(() => children.delete(daemon));
  // A daemon that exits at start (bad configuration) fails the wait at once, with what it said.
  const exitedEarly = daemon.exited.then(({ code, signal }) => {
    throw new Error(`${role} daemon exited at start (${signal ?? code})`);
  });
  await Promise.race([daemon.waitForLog(`${role} daemon to start`, (l) => l.msg === 'order-callbacks running', 30_000), exitedEarly]).catch(
    (err) => {
      throw new Error(`${err.message}\nstderr: ${daemon.stderr.join('')}`);
    },
  );
  exitedEarly.catch(() => undefined);
  return daemon;
}

/** For afterEach/afterAll: nothing a test started outlives it. Children get SIGKILL, by pid. */
export async function stopAllDaemons(): Promise<void> {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGCONT');
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await child.exited;
  }
  await Promise.allSettled([...running].map((d) => d.stop()));
  running.clear();
}
