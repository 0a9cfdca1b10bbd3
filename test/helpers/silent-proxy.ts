import type { AddressInfo } from 'node:net';
import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

/**
 * A TCP proxy on 127.0.0.1 in front of a service, that can make the connections open through it go
 * silent: what either side sends is read and dropped, and no socket is closed, so neither side hears
 * a FIN or a RST. That is what a dropped NAT entry or a partition looks like from both ends. New
 * connections are forwarded as usual, as they would be through a fresh NAT entry.
 */
export class SilentProxy {
  /** What each connection's client sent first (for Postgres, its startup message), in order. */
  readonly firstChunks: Buffer[] = [];
  private readonly pairs = new Set<Pair>();
  private readonly silenced = new Set<Pair>();
  private server?: net.Server;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<this> {
    this.server = net.createServer((client) => this.forward(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  /** The connections open now, as many as are being forwarded. */
  openConnections(): number {
    return this.pairs.size;
  }

  /** Every connection open now stops forwarding, in both directions, and stays open. Returns how many. */
  silence(): number {
    for (const pair of this.pairs) {
      pair.client.unpipe(pair.upstream);
      pair.upstream.unpipe(pair.client);
      // Read and drop, so that the senders' writes still succeed as they would into a black hole.
      pair.client.on('data', () => undefined);
      pair.upstream.on('data', () => undefined);
      this.pairs.delete(pair);
      this.silenced.add(pair);
    }
    return this.silenced.size;
  }

  /** Ends every connection being forwarded now (both sides hear it), as a restart or a failover would. */
  cut(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
  }

  /** Ends every connection, silent or not, and stops listening. */
  async close(): Promise<void> {
    for (const { client, upstream } of [...this.pairs, ...this.silenced]) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    this.silenced.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private forward(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    client.once('data', (chunk: Buffer) => this.firstChunks.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
    // A silent pair ignores its sockets' ends: a peer that went silent would not pass them on.
    const end = () => {
      if (this.silenced.has(pair)) return;
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  }
}
