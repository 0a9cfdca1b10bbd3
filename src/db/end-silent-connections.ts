import type { Socket } from 'node:net';
import type { Client } from 'pg';

/**
 * How long a connection that was sent a statement may stay silent before it is ended: the statement
 * timeout, which the server enforces, plus half of it and at least 5 s more, so that a connection that
 * is only busy has always answered (with its rows or with the cancellation) well before, even across
 * a stalled event loop or a slow network.
 */
export function silenceBoundMs(statementTimeoutMs: number): number {
  return statementTimeoutMs + Math.max(Math.round(statementTimeoutMs / 2), 5000);
}

/**
 * Ends a Postgres connection that was sent something and has heard nothing back for `silenceMs`. A peer
 * gone silent (a dropped NAT entry, an address a failover moved, a partition) sends no FIN or RST, and
 * TCP retransmits for some 15 minutes before it gives up, with the statement's caller waiting all that
 * time. Ended, the connection fails its statement (so the caller can retry on a new one) and leaves
 * the pool. An idle connection is left alone: nothing was asked of it (TCP keepalive watches it).
 *
 * The bound assumes no statement on the connection may run longer than the session's statement
 * timeout: a session that raises its own (SET statement_timeout) past the bound would be ended
 * mid-statement.
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
    // After the poll phase, so that a reply that arrived while the event loop was stalled is read
    // first and does not pass for silence.
    setImmediate(() => {
      if (socket.destroyed || socket.bytesWritten <= writtenWhenLastHeard) return;
      const err = new Error(`Postgres did not answer within ${silenceMs} ms; ending the connection`);
      onSilent(err);
      socket.destroy(err);
    });
  });
}
