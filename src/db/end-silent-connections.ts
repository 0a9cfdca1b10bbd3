import type { Socket } from 'node:net';
import type { Client } from 'pg';

/**
 * How long a connection that was sent a statement may stay silent before it is ended: half again the
 * statement timeout, which the server enforces, so that a connection that is only busy has always
 * answered (with its rows or with the cancellation) well before.
 */
export function silenceBoundMs(statementTimeoutMs: number): number {
  return Math.round(statementTimeoutMs * 1.5);
}

/**
 * Ends a Postgres connection that was sent something and has heard nothing back for `silenceMs`. A peer
 * gone silent (a dropped NAT entry, an address a failover moved, a partition) sends no FIN or RST, and
 * TCP retransmits for some 15 minutes before it gives up, with the statement's caller waiting all that
 * time. Ended, the connection fails its statement (so the caller can retry on a new one) and leaves
 * the pool. An idle connection is left alone: nothing was asked of it.
 */
export function endWhenSilent(client: Client, silenceMs: number, onSilent: (err: Error) => void): void {
  const socket = client.connection.stream as Socket;
  let writtenWhenLastHeard = socket.bytesWritten;
  // Ahead of pg's own listener, which writes the next queued statement while it handles this reply.
  socket.prependListener('data', () => {
    writtenWhenLastHeard = socket.bytesWritten;
  });
  // on, not setTimeout's callback: that one is called once, and an idle connection times out often.
  socket.setTimeout(silenceMs);
  socket.on('timeout', () => {
    if (socket.bytesWritten <= writtenWhenLastHeard) return;
    const err = new Error(`Postgres did not answer within ${silenceMs} ms; ending the connection`);
    onSilent(err);
    socket.destroy(err);
  });
}
