import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { CallbackDeadline } from '../../src/delivery/callback-deadline';
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

const request = (path: string): SignedRequest => ({
  url: new URL(`${origin}${path}`),
  body: '{"orderId":"1","payload":{}}',
  webhookId: 'msg_1',
  signingKeys: [Buffer.from('k')],
});

it('a 2xx whose body never ends is delivered: the body is cut off, not waited for', async () => {
  const agent = new Agent();
  const deadline = new CallbackDeadline(new AbortController().signal, 5_000, 'timeout');
  try {
    await expect(sendCallback(agent, request('/trickle-ok'), deadline)).resolves.toEqual({ status: 200, retryAfterMs: undefined });
    expect(deadline.cause).toBeUndefined();
  } finally {
    deadline.dispose();
    await agent.destroy();
  }
});

it('an error answer keeps its Retry-After and the start of its body, on one line', async () => {
  const agent = new Agent();
  const deadline = new CallbackDeadline(new AbortController().signal, 5_000, 'timeout');
  try {
    const answer = await sendCallback(agent, request('/busy'), deadline);
    expect(answer.status).toBe(503);
    expect(answer.retryAfterMs).toBe(7000);
    expect(answer.bodySnippet).toMatch(/^busy now y+$/);
    expect(answer.bodySnippet!.length).toBeLessThanOrEqual(512);
  } finally {
    deadline.dispose();
    await agent.destroy();
  }
});

it('a deadline that passes while waiting for the answer rejects with its cause', async () => {
  const agent = new Agent();
  const deadline = new CallbackDeadline(new AbortController().signal, 100, 'claim');
  try {
    await expect(sendCallback(agent, request('/hang'), deadline)).rejects.toThrow('aborted: claim');
    expect(deadline.cause).toBe('claim');
  } finally {
    deadline.dispose();
    await agent.destroy();
  }
});

it('a deadline that passes while the request waits for a connection gives up at once, and the request is never sent', async () => {
  const agent = new Agent({ connections: 1 });
  const shutdown = new AbortController();
  const first = new CallbackDeadline(shutdown.signal, 5_000, 'timeout');
  const second = new CallbackDeadline(shutdown.signal, 100, 'timeout');
  const before = seen.length;
  try {
    const hanging = sendCallback(agent, request('/hang'), first);
    await expect(sendCallback(agent, request('/ok?queued'), second)).rejects.toThrow('aborted: timeout');
    shutdown.abort(); // closes the only connection: the queued request now gets a new one, and must not go out
    await expect(hanging).rejects.toThrow('aborted: shutdown');
    const third = new CallbackDeadline(new AbortController().signal, 5_000, 'timeout');
    await expect(sendCallback(agent, request('/ok?after'), third)).resolves.toMatchObject({ status: 200 });
    third.dispose();
    expect(seen.slice(before)).toEqual(['/hang', '/ok?after']);
  } finally {
    first.dispose();
    second.dispose();
    await agent.destroy();
  }
});

it('shutdown stops every callback in flight, and a deadline made after it fires at once', async () => {
  const agent = new Agent();
  const shutdown = new AbortController();
  const deadlines = [1, 2, 3].map(() => new CallbackDeadline(shutdown.signal, 5_000, 'timeout'));
  try {
    const inFlight = deadlines.map((deadline) => sendCallback(agent, request('/hang'), deadline));
    await new Promise((resolve) => setTimeout(resolve, 100));
    shutdown.abort();
    for (const call of inFlight) await expect(call).rejects.toThrow('aborted: shutdown');
    expect(deadlines.map((d) => d.cause)).toEqual(['shutdown', 'shutdown', 'shutdown']);
    const late = new CallbackDeadline(shutdown.signal, 5_000, 'timeout');
    expect(late.cause).toBe('shutdown');
    late.dispose();
  } finally {
    deadlines.forEach((d) => d.dispose());
    await agent.destroy();
  }
});

it('a 1xx is not the answer: with no final status the request still times out', async () => {
  const agent = new Agent();
  const deadline = new CallbackDeadline(new AbortController().signal, 300, 'timeout');
  try {
    await expect(sendCallback(agent, request('/processing'), deadline)).rejects.toThrow('aborted: timeout');
  } finally {
    deadline.dispose();
    await agent.destroy();
  }
});

it('an error answer whose body stops coming is still the answer when the deadline passes', async () => {
  const agent = new Agent();
  const deadline = new CallbackDeadline(new AbortController().signal, 300, 'timeout');
  try {
    await expect(sendCallback(agent, request('/slow-error'), deadline)).resolves.toEqual({ status: 500, retryAfterMs: undefined, bodySnippet: 'partial' });
    expect(deadline.cause).toBe('timeout');
  } finally {
    deadline.dispose();
    await agent.destroy();
  }
});

it('the connection is kept alive after an error answer with a long body', async () => {
  const agent = new Agent({ connections: 1 });
  const deadline = new CallbackDeadline(new AbortController().signal, 5_000, 'timeout');
  const before = clientPorts.length;
  try {
    for (let i = 0; i < 2; i++) await expect(sendCallback(agent, request('/busy'), deadline)).resolves.toMatchObject({ status: 503 });
    const [first, second] = clientPorts.slice(before);
    expect(second).toBe(first);
  } finally {
    deadline.dispose();
    await agent.destroy();
  }
});

it('a deadline that has passed before the call sends nothing, and opens no connection', async () => {
  const agent = new Agent();
  const shutdown = new AbortController();
  shutdown.abort();
  const deadline = new CallbackDeadline(shutdown.signal, 5_000, 'timeout');
  const [requestsBefore, connectionsBefore] = [seen.length, connections];
  try {
    await expect(sendCallback(agent, request('/ok?too-late'), deadline)).rejects.toThrow('aborted: shutdown');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.slice(requestsBefore)).toEqual([]);
    expect(connections).toBe(connectionsBefore);
  } finally {
    deadline.dispose();
    await agent.destroy();
  }
});
