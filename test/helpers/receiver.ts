import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  webhookId: string;
  startedAt: number;
  /** When the receiver finished answering; undefined while in flight or if the client went away. */
  endedAt?: number;
}

/** What the receiver does with one request: answer with a status (after a delay), or hang up. */
export type Reply =
  | { status: number; headers?: Record<string, string>; body?: string; delayMs?: number }
  | { hangUp: true; delayMs?: number }
  | { never: true }
  /** Headers with this status, then a body that never ends (1 MiB chunks until the client goes away). */
  | { endless: number };

export type Behaviour = (request: ReceivedRequest, attemptForThisId: number) => Reply;

/**
 * A partner's endpoint on 127.0.0.1 that records every request and tracks, per webhook-id, how many
 * are open at once: the "never two deliveries of one order at the same time" invariant is read here.
 */
export class Receiver {
  readonly requests: ReceivedRequest[] = [];
  /** webhook-ids that ever had two requests open at the same time. */
  readonly overlaps = new Set<string>();
  /** The most requests ever open at once, across all webhook-ids. */
  peakInFlight = 0;
  private readonly open = new Map<string, number>();
  private server?: http.Server;
  private readonly sockets = new Set<import('node:net').Socket>();
  behaviour: Behaviour;

  constructor(behaviour: Behaviour = () => ({ status: 200 })) {
    this.behaviour = behaviour;
  }

  /**
   * Listens on `port` (a partner that comes back where it was), or on any free one. `keepAliveMs`: how
   * long an idle connection stays open (Node's default, 5 s, unless given).
   */
  async start(port = 0, keepAliveMs?: number): Promise<this> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    if (keepAliveMs !== undefined) this.server.keepAliveTimeout = keepAliveMs;
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  url(path = '/callback'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  requestsFor(webhookId: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.webhookId === webhookId);
  }

  /** Requests per webhook-id. */
  countsById(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.requests) counts.set(r.webhookId, (counts.get(r.webhookId) ?? 0) + 1);
    return counts;
  }

  inFlight(): number {
    let n = 0;
    for (const v of this.open.values()) n += v;
    return n;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const webhookId = String(req.headers['webhook-id'] ?? '');
      const record: ReceivedRequest = {
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        webhookId,
        startedAt: Date.now(),
      };
      const attempt = this.requestsFor(webhookId).length + 1;
      this.requests.push(record);
      const openNow = (this.open.get(webhookId) ?? 0) + 1;
      this.open.set(webhookId, openNow);
      if (openNow > 1) this.overlaps.add(webhookId);
      this.peakInFlight = Math.max(this.peakInFlight, this.inFlight());
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        this.open.set(webhookId, (this.open.get(webhookId) ?? 1) - 1);
      };
      // The client going away (abort, kill) ends the request as far as overlap is concerned.
      res.on('close', close);

      const reply = this.behaviour(record, attempt);
      if ('never' in reply) return;
      if ('endless' in reply) {
        res.writeHead(reply.endless, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(1024 * 1024, 'x');
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
        return;
      }
      const delayMs = 'delayMs' in reply ? reply.delayMs : 0;
      setTimeout(() => {
        if ('hangUp' in reply) {
          req.socket.destroy();
          close();
          return;
        }
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body ?? '', () => {
          record.endedAt = Date.now();
          close();
        });
      }, delayMs ?? 0);
    });
  }
}

/** Every one of `total` orders reached `receiver` exactly once, and never two requests for one at a time. */
export function expectEachDeliveredOnce(receiver: Receiver, total: number): void {
  expect(receiver.overlaps.size).toBe(0);
  const counts = receiver.countsById();
  expect(counts.size).toBe(total);
  expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
}
