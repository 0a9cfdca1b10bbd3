import net from 'node:net';

import type { Client } from 'pg';

import { SilenceWatch } from '../../src/db/end-silent-connections';

// A socket to a loopback server that answers only when told to, under a stand-in for pg's Client: the
// watch reads only its socket and its readyForQuery flag (false while a statement is out).
let server: net.Server;
let peer: net.Socket;
let socket: net.Socket;

beforeEach(async () => {
  const accepted = new Promise<net.Socket>((resolve) => (server = net.createServer(resolve)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  peer = await accepted;
  peer.on('data', () => undefined);
  // pg listens for the error a connection is ended with; so does this stand-in.
  socket.on('error', () => undefined);
});

afterEach(async () => {
  socket.destroy();
  peer.destroy();
  await new Promise((resolve) => server.close(resolve));
});

function standIn(): { client: Client; send(): void; answered(): void } {
  const fake = { connection: { stream: socket }, readyForQuery: true };
  return {
    client: fake as unknown as Client,
    send: () => {
      fake.readyForQuery = false;
      socket.write('statement');
    },
    answered: () => (fake.readyForQuery = true),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A watch (overdue at 200 ms, ended at 600 ms) on the stand-in, with a statement out for 400 ms. */
async function overdueStatement(): Promise<{ watch: SilenceWatch; pg: ReturnType<typeof standIn>; ended: Error[] }> {
  const ended: Error[] = [];
  const watch = new SilenceWatch(200, 600, (err) => ended.push(err));
  const pg = standIn();
  watch.watch(pg.client);
  pg.send();
  await sleep(400);
  return { watch, pg, ended };
}

it('calls a statement overdue past the first bound and ends its connection at the second', async () => {
  const { watch, ended } = await overdueStatement();
  expect(watch.overdueCount()).toBe(1);
  await sleep(400);
  expect(ended.map((e) => e.message)).toEqual(['Postgres did not answer within 600 ms; ending the connection']);
  expect(socket.destroyed).toBe(true);
  expect(watch.overdueCount()).toBe(0);
});

it('forgets an overdue statement once anything is heard, and never ends that connection', async () => {
  const { watch, pg, ended } = await overdueStatement();
  expect(watch.overdueCount()).toBe(1);
  peer.write('reply');
  await sleep(50);
  pg.answered();
  expect(watch.overdueCount()).toBe(0);
  await sleep(600);
  expect(ended).toEqual([]);
  expect(socket.destroyed).toBe(false);
});

it('does not hold an idle spell against a statement written in the same turn its timer ran out', async () => {
  const ended: Error[] = [];
  const watch = new SilenceWatch(200, 600, (err) => ended.push(err));
  const pg = standIn();
  watch.watch(pg.client);
  // On the socket's own idle timeout, after the watch has looked (idle: nothing out), a statement is
  // sent in the same turn of the event loop, as pg does when a query is queued at that moment.
  socket.once('timeout', () => pg.send());
  await sleep(300);
  expect(watch.overdueCount()).toBe(0);
  // Answered within its own bound, counted from when it was sent: never overdue, never ended.
  peer.write('reply');
  await sleep(50);
  pg.answered();
  await sleep(700);
  expect(watch.overdueCount()).toBe(0);
  expect(ended).toEqual([]);
});
