import type { Dispatcher } from 'undici';

import { ClaimLapsedError } from '../errors/claim-lapsed-error';
import { parseRetryAfter } from './backoff';
import type { HttpAnswer } from './classify';
import { signPayload } from './sign';

export interface SignedRequest {
  url: URL;
  body: string;
  /** The partner's idempotency key: the same on every request for the same order. */
  webhookId: string;
  /** One signature per key, space-separated: more than one while a partner's secret is rotated. */
  signingKeys: Buffer[];
  /**
   * The last moment the request may be written, on both clocks (performance.now() and Date.now()): it
   * is late when either says so. Checked as undici is about to write it, so a process paused since (its
   * timers late) never sends on a claim that has run out. Both, because a monotonic clock may not count
   * every kind of pause (a suspended VM's), and a wall clock may step back.
   */
  sendBy: { mono: number; wall: number };
  /** Now, in ms since the epoch, on the clock the daemon shares (Postgres'): webhook-timestamp, Retry-After dates. */
  now: () => number;
}

/** What stops a request early (CallbackDeadline): it is told how, once, and calls that when it fires. */
export interface StopSwitch {
  onStop(stop: (reason: Error) => void): void;
}

/** How much of an error response is kept for last_error. The rest is discarded. */
const SNIPPET_BYTES = 512;
/** How much of a 2xx body is read (so the connection can be reused) before it is cut off. */
const DISCARD_LIMIT_BYTES = 64 * 1024;
const DISCARD_TIMEOUT_MS = 1000;

/**
 * POSTs one signed callback and returns the partner's answer. Rejects on network errors and when
 * `stopSwitch` fires before an answer came (timeout, lost claim, shutdown); the caller classifies those.
 *
 * The answer is the final status, whatever the body does next. The body is drained a little for
 * keep-alive's sake (up to 64 KiB or 1 s; the first 512 bytes of an error answer are kept for the error
 * message), and one that is bigger, slower or never ends is cut off, its socket closed, rather than
 * waited for.
 *
 * A stop that comes while the request still waits for its connection settles at once, so a callback
 * never outruns its budget (the claim must outlive it); undici drops the request unsent when the
 * connection comes, or the connection attempt fails by itself within its connect timeout.
 *
 * Built on undici's dispatch rather than request(): no body stream and no AbortSignal per callback,
 * which halved the client's CPU per callback (docs/decisions/0001-callbacks-through-undici-dispatch.md).
 */
export function sendCallback(client: Dispatcher, request: SignedRequest, stopSwitch: StopSwitch): Promise<HttpAnswer> {
  const timestamp = Math.floor(request.now() / 1000);
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'order-callbacks',
    'webhook-id': request.webhookId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': request.signingKeys.map((key) => signPayload(key, request.webhookId, timestamp, request.body)).join(' '),
  };
  const lapsed = () => {
    const late = Math.max(performance.now() - request.sendBy.mono, Date.now() - request.sendBy.wall);
    return late > 0
      ? new ClaimLapsedError(`not sent: the claim was running out (${Math.round(late)} ms past the last moment to send)`)
      : undefined;
  };
  return new Promise<HttpAnswer>((resolve, reject) => {
    // Checked first: a process paused since its claim finds its deadline's timer late, or not yet run.
    const lapsedAlready = lapsed();
    if (lapsedAlready) return reject(lapsedAlready);
    let controller: Dispatcher.DispatchController | undefined;
    let stoppedBefore: Error | undefined;
    let answer: HttpAnswer | undefined;
    let received = 0;
    const snippet: Buffer[] = [];
    let cutOff: NodeJS.Timeout | undefined;
    let settled = false;

    // Once answered, the rest of the body changes nothing: the answer stands, however the body ends.
    const answered = () => {
      if (settled || !answer) return;
      settled = true;
      clearTimeout(cutOff);
      const ok = answer.status >= 200 && answer.status < 300;
      resolve(ok ? answer : { ...answer, bodySnippet: snippetText(snippet) });
    };
    const failed = (err: Error) => {
      if (answer) return answered();
      if (settled) return;
      settled = true;
      reject(err);
    };
    const dropBody = (c: Dispatcher.DispatchController) => {
      answered();
      c.abort(new Error('response body dropped'));
    };

    stopSwitch.onStop((reason) => {
      if (controller) controller.abort(reason);
      else {
        stoppedBefore = reason;
        failed(reason);
      }
    });
    if (stoppedBefore) return; // stopped before it started: nothing to send

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (stoppedBefore) return c.abort(stoppedBefore);
        // The last moment before the request is written: a timer set to stop it may not have run yet.
        const lapsedNow = lapsed();
        if (lapsedNow) c.abort(lapsedNow);
      },
      onResponseStart(c, statusCode, responseHeaders) {
        // 1xx (102 Processing, 103 Early Hints) is not the answer: the final status is still to come.
        if (statusCode < 200) return;
        const retryAfter = responseHeaders['retry-after'];
        answer = {
          status: statusCode,
          retryAfterMs: parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, request.now()),
        };
        if (Number(responseHeaders['content-length']) > DISCARD_LIMIT_BYTES) dropBody(c);
        else cutOff = setTimeout(() => dropBody(c), DISCARD_TIMEOUT_MS);
      },
      onResponseData(c, chunk) {
        if (received < SNIPPET_BYTES) snippet.push(chunk);
        received += chunk.length;
        if (received > DISCARD_LIMIT_BYTES) dropBody(c);
      },
      onResponseEnd: () => (answer ? answered() : failed(new Error('the response ended without a status'))),
      onResponseError: (_c, err) => failed(err),
    };
    try {
      client.dispatch(
        { origin: request.url.origin, path: `${request.url.pathname}${request.url.search}`, method: 'POST', headers, body: request.body },
        handler,
      );
    } catch (err) {
      failed(err as Error);
    }
  });
}

/** The first bytes of a body as one printable line. */
function snippetText(chunks: Buffer[]): string {
  return Buffer.concat(chunks)
    .subarray(0, SNIPPET_BYTES)
    .toString('utf8')
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[^\x20-\x7e\u00a0-\uffff]/g, '')
    .trim();
}
