import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { freePort } from './free-port';
import { waitFor } from './wait-for';

/**
 * A private redis-server on its own port and directory, for tests that kill or restart Redis; the
 * shared one on 6379 is never touched. It keeps nothing on disk, so a restart comes back empty.
 */
export class PrivateRedis {
  private process?: ChildProcess;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'oc-redis-'));

  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[],
  ) {}

  /** `extraArgs` go to redis-server after the defaults (a cluster node's or a replica's settings). */
  static async start(extraArgs: readonly string[] = []): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), extraArgs);
    await redis.run();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** SIGKILL, then the same port again, empty. */
  async restartEmpty(downForMs = 0): Promise<void> {
    await this.kill();
    rmSync(path.join(this.dir, 'dump.rdb'), { force: true });
    if (downForMs) await new Promise((resolve) => setTimeout(resolve, downForMs));
    await this.run();
  }

  /** Writes a snapshot of what Redis holds now (SAVE), for restartFromSnapshot(). */
  async save(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(this.port, '127.0.0.1', () => socket.write('SAVE\r\n'));
      socket.once(
        'data',
        (reply) => (socket.destroy(), reply.toString().startsWith('+OK') ? resolve() : reject(new Error(`SAVE: ${reply.toString()}`))),
      );
      socket.once('error', reject);
    });
  }

  /** SIGKILL, then the same port again with the data of the last save(): Redis gone back in time. */
  async restartFromSnapshot(): Promise<void> {
    await this.kill();
    await this.run();
  }

  /** SIGKILL, and it stays down until restartEmpty(). */
  async crash(): Promise<void> {
    await this.kill();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async run(): Promise<void> {
    this.process = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...this.extraArgs],
      { stdio: 'ignore' },
    );
    await waitFor(`redis-server on ${this.port}`, () => canConnect(this.port), 10_000);
  }

  private async kill(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
