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
 * Ends Postgres connections that were sent something and have heard nothing back for `silenceMs`. A
 * peer gone silent (a dropped NAT entry, an address a failover moved, a partition) sends no FIN or
 * RST, and TCP retransmits for some 15 minutes before it gives up, with the statement's caller waiting
 * all that time. Ended, the connection fails its statement (so the caller can retry on a new one) and
 * leaves the pool. An idle connection is left alone: nothing was asked of it (TCP keepalive watches it).
 *
 * A connection is overdue from `answerWithinMs` (the statement timeout: past it, the server would have
 * answered with a cancellation) until it is heard from or ended: what /readyz reports as stuck. A
 * session that raises its own statement timeout (SET statement_timeout) past these bounds would be
 * ended mid-statement.
 */
export class SilenceWatch {
  private readonly overdue = new Set<Client>();

  constructor(
    private readonly answerWithinMs: number,
    private readonly silenceMs: number,
    private readonly onSilent: (err: Error) => void,
  ) {}

  /** Connections waiting for an answer for longer than the server could take to give one. */
  overdueCount(): number {
    return this.overdue.size;
  }

  watch(client: Client): void {
    const socket = client.connection.stream as Socket;
    // pg's own flag: false from the moment a statement is sent until its last reply (ReadyForQuery) is
    // in. Data that is not that reply (part of it, a notification) still shows the path is alive.
    const waiting = () => (client as unknown as { readyForQuery: boolean }).readyForQuery === false;
    let heard = 0;
    let endTimer: NodeJS.Timeout | undefined;
    const notOverdue = () => {
      this.overdue.delete(client);
      clearTimeout(endTimer);
    };
    socket.on('data', () => {
      heard += 1;
      notOverdue();
    });
    socket.on('close', notOverdue);
    // on, not setTimeout's callback: that one is called once, and an idle connection times out often.
    socket.setTimeout(this.answerWithinMs);
    socket.on('timeout', () => {
      // Idle when the time ran out: a statement written from now on (even in this same turn of the
      // event loop) re-arms the timer, and is judged from its own start.
      if (!waiting()) return;
      // Checked after the poll phase: data that arrived while the event loop was stalled is read
      // first, and counts as heard even if pg has sent its next statement meanwhile.
      const heardBefore = heard;
      setImmediate(() => {
        if (socket.destroyed || heard !== heardBefore || !waiting() || this.overdue.has(client)) return;
        this.overdue.add(client);
        endTimer = setTimeout(() => setImmediate(() => this.end(client, socket)), this.silenceMs - this.answerWithinMs);
      });
    });
  }

  private end(client: Client, socket: Socket): void {
    if (!this.overdue.has(client) || socket.destroyed) return;
    this.overdue.delete(client);
    const err = new Error(`Postgres did not answer within ${this.silenceMs} ms; ending the connection`);
    this.onSilent(err);
    socket.destroy(err);
  }
}
