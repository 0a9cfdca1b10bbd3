import {
  AT_CAP,
  atCap,
  atCapSince,
  type CapacityContext,
  leaseWhileSilent,
  SILENT_FOR_TIMEOUTS,
  type SilentPartner,
  WHILE_SILENT,
} from '../../src/partners/partner-capacity';
import { partnerOutcome, stoppedByUs } from '../../src/partners/partner-outcome';

const NOW = 50_000;
const context = (answers: CapacityContext['answers'], atCapSince = NOW): CapacityContext => ({
  answers,
  atCapSince,
  now: NOW,
  callbackTimeoutMs: 10_000,
});

describe('at the cap, row by row', () => {
  const cases: [string, CapacityContext, ReturnType<typeof atCap>][] = [
    [AT_CAP[0].when, context({ lastOkAt: NOW - 200, answerMs: 40 }), { kind: 'wait' }],
    [
      AT_CAP[1].when,
      context({ lastOkAt: NOW - 5000, answerMs: 40 }, NOW - 1500),
      { kind: 'hand_back', until: NOW + 10_000, skipInProducer: true, reason: 'silent at its cap' },
    ],
    [
      AT_CAP[2].when,
      context({ lastOkAt: NOW - 300, answerMs: 2000 }, NOW - 300),
      { kind: 'hand_back', until: NOW + 2000, skipInProducer: false, reason: 'at its cap' },
    ],
  ];
  it('has a case for every row', () => expect(cases.map((c) => c[0])).toEqual(AT_CAP.map((r) => r.when)));
  it.each(cases)('%s', (_row, c, expected) => expect(atCap(c)).toEqual(expected));

  it('does not call a partner silent the moment it reaches its cap after a quiet hour', () => {
    expect(atCap(context({ lastOkAt: NOW - 3_600_000, answerMs: 40 }, NOW - 10))).toMatchObject({
      kind: 'hand_back',
      skipInProducer: false,
      until: NOW + 500,
    });
  });

  it('gives a slow partner twice its answer time before calling it silent', () => {
    expect(atCap(context({ lastOkAt: NOW - 3000, answerMs: 2000 }, NOW - 3000))).toMatchObject({ skipInProducer: false });
    expect(atCap(context({ lastOkAt: NOW - 4000, answerMs: 2000 }, NOW - 4000))).toMatchObject({ skipInProducer: true });
  });
});

describe('what an attempt says about its partner', () => {
  const retry = { kind: 'retry' as const, reason: 'x' };
  it.each([
    ['a 2xx', { kind: 'delivered' as const }, { status: 200 }, false, { kind: 'healthy', answerMs: 30, firstAttempt: true }],
    ['a redirect', retry, { status: 302 }, false, { kind: 'healthy', answerMs: 30, firstAttempt: true }],
    [
      'a 404 or 410 about the order',
      { kind: 'failed' as const, reason: 'HTTP 410' },
      { status: 410 },
      false,
      { kind: 'healthy', answerMs: 30, firstAttempt: true },
    ],
    [
      'a 500',
      { kind: 'retry' as const, reason: 'HTTP 500' },
      { status: 500 },
      false,
      { kind: 'failed', error: 'HTTP 500', firstAttempt: true },
    ],
    [
      'a 429',
      { kind: 'retry' as const, reason: 'HTTP 429' },
      { status: 429 },
      false,
      { kind: 'failed', error: 'HTTP 429', firstAttempt: true },
    ],
    [
      'a 503 with Retry-After',
      { kind: 'retry' as const, reason: 'HTTP 503' },
      { status: 503, retryAfterMs: 5000 },
      false,
      { kind: 'failed', error: 'HTTP 503', firstAttempt: true, retryAfter: { pauseMs: 5000, status: 503 } },
    ],
    [
      'a 500 with Retry-After (no pause: only 429 and 503 ask for one)',
      { kind: 'retry' as const, reason: 'HTTP 500' },
      { status: 500, retryAfterMs: 5000 },
      false,
      { kind: 'failed', error: 'HTTP 500', firstAttempt: true },
    ],
    [
      'no answer: a timeout or a refused connection',
      { kind: 'retry' as const, reason: 'timed out' },
      undefined,
      false,
      { kind: 'failed', error: 'timed out', firstAttempt: true },
    ],
    [
      "a refused destination: the order's URL",
      { kind: 'failed' as const, reason: 'private address' },
      undefined,
      false,
      { kind: 'not_counted' },
    ],
    [
      'a request we stopped (shutdown, the claim running out)',
      { kind: 'retry' as const, reason: 'aborted' },
      undefined,
      true,
      { kind: 'not_counted' },
    ],
    ['no verdict: our own code failed', undefined, undefined, false, { kind: 'not_counted' }],
  ])('%s', (_name, verdict, answer, aborted, expected) => {
    expect(partnerOutcome(verdict, answer, { aborted, answerMs: 30, firstAttempt: true })).toEqual(expected);
  });
});

describe('a request that got no answer', () => {
  it.each([
    ['stopped by shutdown: ours', 'shutdown', 10_000, true],
    ['cut well short because its claim was running out: ours', 'claim', 3000, true],
    ['cut a little short by a tight claim (CLAIM_TTL_MS near its minimum): a timeout', 'claim', 9000, false],
    ["ran its whole timeout: the partner's", 'timeout', 10_000, false],
    ["failed on the network: the partner's", undefined, 10_000, false],
  ] as const)('%s', (_name, cause, budget, ours) => {
    expect(stoppedByUs(cause, budget, 10_000)).toBe(ours);
  });
});

describe('at the cap since when', () => {
  it.each([
    ['not at the cap: no spell', 5000, { inFlight: 3, limit: 8, granted: 0 }, undefined],
    ['at the cap for the first time: since now', undefined, { inFlight: 8, limit: 8, granted: 0 }, NOW],
    ['still at the cap, nothing granted: the spell goes on', NOW - 4000, { inFlight: 8, limit: 8, granted: 0 }, NOW - 4000],
    [
      'at the cap again after a slot was granted (one was free): a new spell, from now',
      NOW - 4000,
      { inFlight: 8, limit: 8, granted: 2 },
      NOW,
    ],
  ] as const)('%s', (_name, prev, exchange, expected) => {
    expect(atCapSince(prev, exchange, NOW)).toBe(expected);
  });
});

describe('what a producer run may lease of a partner found silent at its cap', () => {
  const silent = (over: Partial<SilentPartner> = {}): SilentPartner => ({
    silentSince: NOW - 3000,
    skipUntil: NOW - 1000,
    lastOkAt: NOW - 60_000,
    inFlight: 10,
    limit: 16,
    now: NOW,
    callbackTimeoutMs: 2000,
    ...over,
  });
  const rows: [string, SilentPartner, ReturnType<typeof leaseWhileSilent>][] = [
    [WHILE_SILENT[0].when, silent({ lastOkAt: NOW - 2000, skipUntil: NOW + 5000 }), 'over'],
    [WHILE_SILENT[1].when, silent({ silentSince: NOW - SILENT_FOR_TIMEOUTS * 2000, skipUntil: NOW + 5000 }), 'over'],
    [WHILE_SILENT[2].when, silent({ skipUntil: NOW + 1 }), 0],
    [WHILE_SILENT[3].when, silent(), 6],
  ];
  it('has a case for every row', () => expect(rows.map((r) => r[0])).toEqual(WHILE_SILENT.map((r) => r.when)));
  it.each(rows)('%s', (_row, p, expected) => expect(leaseWhileSilent(p)).toBe(expected));
  it('none while every slot is taken', () => expect(leaseWhileSilent(silent({ inFlight: 16 }))).toBe(0));
  it('none when more are in flight than its cap (a half-open cap under slots of the closed one)', () =>
    expect(leaseWhileSilent(silent({ inFlight: 20, limit: 3 }))).toBe(0));
  it(`over after ${SILENT_FOR_TIMEOUTS} callback timeouts without an answer: its circuit decides from there on`, () => {
    expect(leaseWhileSilent(silent({ silentSince: NOW - SILENT_FOR_TIMEOUTS * 2000 + 1 }))).toBe(6);
    expect(leaseWhileSilent(silent({ silentSince: NOW - SILENT_FOR_TIMEOUTS * 2000 }))).toBe('over');
  });
});
