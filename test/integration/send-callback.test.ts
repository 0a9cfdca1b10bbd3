import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { Agent } from 'undici';

import { CallbackDeadline } from '../../src/delivery/callback-deadline';
import type { AbortCause } from '../../src/delivery/classify-error';
import { sendCallback, type SignedRequest } from '../../src/delivery/send-callback';

// sendCallback against a real HTTP server on loopback, stopped by a real CallbackDeadline.
let server: http.Server;
let origin: string;
const seen: string[] = [];
/** The client port of each request, in order: the same port twice means a kept-alive connection. */
const clientPorts: number[] = [];
let connections = 0;
const open = new Set<http.ServerResponse>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(req.url!);
    clientPorts.push(req.socket.remotePort!);
    req.resume();
    open.add(res);
    res.on('close', () => open.delete(res));
    if (req.url === '/trickle-ok') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('x'), 50);
      res.on('close', () => clearInterval(timer));
    } else if (req.url === '/busy') {
      res.writeHead(503, { 'retry-after': '7' });
      res.end(`busy\r\n\tnow ${'y'.repeat(1000)}`);
    } else if (req.url!.startsWith('/ok')) {
      res.end('thanks');
    } else if (req.url === '/processing') {
      res.writeProcessing(); // 102, then nothing
    } else if (req.url === '/slow-error') {
      res.writeHead(500);
      res.write('partial'); // and the rest never comes
    }
    // /hang: never answers
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of open) res.destroy();
  await new Promise((resolve) => server.close(resolve));
});

const request = (path: string, sendBy = { mono: Number.POSITIVE_INFINITY, wall: Number.POSITIVE_INFINITY }): SignedRequest => ({
  url: new URL(`${origin}${path}`),
  body: '{"orderId":"1","payload":{}}',
  webhookId: 'msg_1',
  signingKeys: [Buffer.from('k')],
  sendBy,
  now: Date.now,
});

// Each test's clients and deadlines, let go of after it whatever it did.
const agents: Agent[] = [];
const deadlines: CallbackDeadline[] = [];

function client(options: Agent.Options = {}): Agent {
  const agent = new Agent(options);
  agents.push(agent);
  return agent;
}

function deadline(budgetMs: number, cause: AbortCause = 'timeout', shutdown = new AbortController().signal): CallbackDeadline {
  const made = new CallbackDeadline(shutdown, budgetMs, cause);
  deadlines.push(made);
  return made;
}

afterEach(async () => {
  deadlines.splice(0).forEach((made) => made.dispose());
  await Promise.all(agents.splice(0).map((agent) => agent.destroy()));
});

it('a 2xx whose body never ends is delivered: the body is cut off, not waited for', async () => {
  const stop = deadline(5_000);
  await expect(sendCallback(client(), request('/trickle-ok'), stop)).resolves.toEqual({ status: 200, retryAfterMs: undefined });
  expect(stop.cause).toBeUndefined();
});

it('an error answer keeps its Retry-After and the start of its body, on one line', async () => {
  const answer = await sendCallback(client(), request('/busy'), deadline(5_000));
  expect(answer.status).toBe(503);
  expect(answer.retryAfterMs).toBe(7000);
  expect(answer.bodySnippet).toMatch(/^busy now y+$/);
  expect(answer.bodySnippet!.length).toBeLessThanOrEqual(512);
});

it('a deadline that passes while waiting for the answer rejects with its cause', async () => {
  const stop = deadline(100, 'claim');
  await expect(sendCallback(client(), request('/hang'), stop)).rejects.toThrow('aborted: claim');
  expect(stop.cause).toBe('claim');
});

it('a deadline that passes while the request waits for a connection gives up at once, and the request is never sent', async () => {
  const agent = client({ connections: 1 });
  const shutdown = new AbortController();
  const before = seen.length;
  const hanging = sendCallback(agent, request('/hang'), deadline(5_000, 'timeout', shutdown.signal));
  await expect(sendCallback(agent, request('/ok?queued'), deadline(100, 'timeout', shutdown.signal))).rejects.toThrow('aborted: timeout');
  shutdown.abort(); // closes the only connection: the queued request now gets a new one, and must not go out
  await expect(hanging).rejects.toThrow('aborted: shutdown');
  await expect(sendCallback(agent, request('/ok?after'), deadline(5_000))).resolves.toMatchObject({ status: 200 });
  expect(seen.slice(before)).toEqual(['/hang', '/ok?after']);
});

it('shutdown stops every callback in flight, and a deadline made after it fires at once', async () => {
  const agent = client();
  const shutdown = new AbortController();
  const inFlight = [1, 2, 3].map(() => deadline(5_000, 'timeout', shutdown.signal));
  const calls = inFlight.map((stop) => sendCallback(agent, request('/hang'), stop));
  await new Promise((resolve) => setTimeout(resolve, 100));
  shutdown.abort();
  for (const call of calls) await expect(call).rejects.toThrow('aborted: shutdown');
  expect(inFlight.map((stop) => stop.cause)).toEqual(['shutdown', 'shutdown', 'shutdown']);
  expect(deadline(5_000, 'timeout', shutdown.signal).cause).toBe('shutdown');
});

it('a 1xx is not the answer: with no final status the request still times out', async () => {
  await expect(sendCallback(client(), request('/processing'), deadline(300))).rejects.toThrow('aborted: timeout');
});

it('an error answer whose body stops coming is still the answer when the deadline passes', async () => {
  const stop = deadline(300);
  await expect(sendCallback(client(), request('/slow-error'), stop)).resolves.toEqual({
    status: 500,
    retryAfterMs: undefined,
    bodySnippet: 'partial',
  });
  expect(stop.cause).toBe('timeout');
});

it('the connection is kept alive after an error answer with a long body', async () => {
  const agent = client({ connections: 1 });
  const before = clientPorts.length;
  for (let i = 0; i < 2; i++) await expect(sendCallback(agent, request('/busy'), deadline(5_000))).resolves.toMatchObject({ status: 503 });
  const [first, second] = clientPorts.slice(before);
  expect(second).toBe(first);
});

it('a deadline that has passed before the call sends nothing, and opens no connection', async () => {
  const shutdown = new AbortController();
  shutdown.abort();
  const [requestsBefore, connectionsBefore] = [seen.length, connections];
  await expect(sendCallback(client(), request('/ok?too-late'), deadline(5_000, 'timeout', shutdown.signal))).rejects.toThrow(
    'aborted: shutdown',
  );
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(seen.slice(requestsBefore)).toEqual([]);
  expect(connections).toBe(connectionsBefore);
});

it('a request whose last moment to be written has passed by the time the connection is ready is not written', async () => {
  // As in a process paused between its claim and its request: the deadline's timer has not run yet
  // (it is far off here), but the claim would no longer cover the request.
  const agent = new Agent();
  agents.push(agent);
  await expect(sendCallback(agent, request('/ok?warm'), deadline(5_000))).resolves.toMatchObject({ status: 200 });
  const before = seen.length;
  await expect(
    sendCallback(agent, request('/ok?lapsed', { mono: performance.now() - 1, wall: Number.POSITIVE_INFINITY }), deadline(5_000)),
  ).rejects.toMatchObject({ name: 'ClaimLapsedError' });
  // A pause the monotonic clock did not count (a suspended VM's): the wall clock says it is late.
  await expect(
    sendCallback(agent, request('/ok?lapsed-wall', { mono: Number.POSITIVE_INFINITY, wall: Date.now() - 1 }), deadline(5_000)),
  ).rejects.toMatchObject({ name: 'ClaimLapsedError' });
  await expect(sendCallback(agent, request('/ok?after-lapse'), deadline(5_000))).resolves.toMatchObject({ status: 200 });
  expect(seen.slice(before)).toEqual(['/ok?after-lapse']);
});
