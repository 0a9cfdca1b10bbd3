import { readFileSync } from 'node:fs';
import path from 'node:path';

import {
  admission,
  type CircuitEvent,
  type CircuitRules,
  type CircuitState,
  effectiveState,
  leaseLimit,
  nextState,
  type PartnerState,
  TRANSITIONS,
} from '../../src/partners/partner-circuit';

const rules: CircuitRules = {
  failureRate: 0.9,
  minAttempts: 20,
  windowMs: 30_000,
  cooldownMs: 1000,
  maxCooldownMs: 4000,
  probes: 3,
  maxPauseMs: 60_000,
  maxInFlight: 8,
};

const NOW = 100_000;
const at = (state: CircuitState, fields: Partial<PartnerState> = {}): PartnerState => ({
  state,
  version: 7,
  since: NOW - 5000,
  until: 0,
  cooldownMs: 2000,
  reason: 'before',
  ...fields,
});
const outcomes = (attempts: number, failures: number, probesOk = 0, probesFailed = 0): CircuitEvent => ({
  kind: 'outcomes',
  tallies: { attempts, failures, probesOk, probesFailed },
});

/** One case per row of TRANSITIONS, in its order: the state, the event, and where it must go. */
const ROWS: { row: string; from: PartnerState; event: CircuitEvent; to: Partial<PartnerState> }[] = [
  {
    row: "at least BREAKER_FAILURE_RATE of at least BREAKER_MIN_ATTEMPTS orders' first attempts in the window failed",
    from: at('closed'),
    event: outcomes(20, 18),
    to: { state: 'open', until: NOW + 1000, cooldownMs: 1000, reason: '18 of 20 first attempts failed within 30 s' },
  },
  {
    row: 'BREAKER_HALF_OPEN_PROBES probes answered healthily',
    from: at('half_open'),
    event: outcomes(40, 39, 3, 2),
    to: { state: 'closed', until: 0, cooldownMs: 1000 },
  },
  {
    row: 'BREAKER_HALF_OPEN_PROBES probes failed, and at least BREAKER_FAILURE_RATE of its probes',
    from: at('half_open'),
    event: outcomes(40, 39, 0, 3),
    to: { state: 'open', until: NOW + 4000, cooldownMs: 4000, reason: '3 probes failed' },
  },
  {
    row: 'a 429 or 503 came with Retry-After',
    from: at('closed'),
    event: { kind: 'retry_after', pauseMs: 120_000, status: 503 },
    to: { state: 'paused', until: NOW + 60_000, reason: 'HTTP 503 with Retry-After' },
  },
  {
    row: 'a Retry-After that ends later than the pause',
    from: at('paused', { until: NOW + 1000 }),
    event: { kind: 'retry_after', pauseMs: 5000, status: 429 },
    to: { state: 'paused', until: NOW + 5000 },
  },
  {
    row: 'its end has come',
    from: at('open', { until: NOW }),
    event: { kind: 'time' },
    to: { state: 'half_open', until: 0, cooldownMs: 2000 },
  },
  {
    row: 'no probe in flight, and no answer for HALF_OPEN_QUIET_MS since it became half-open',
    from: at('open', { until: NOW - 60_000 }),
    event: { kind: 'quiet', inFlight: 0, lastAnswerAt: NOW - 70_000 },
    to: { state: 'closed', reason: 'no orders to probe' },
  },
  {
    row: 'an operator pauses it',
    from: at('open', { until: NOW + 1000 }),
    event: { kind: 'operator_pause', until: 0, actor: 'ops', reason: 'maintenance' },
    to: { state: 'held', until: 0, actor: 'ops', reason: 'maintenance' },
  },
  {
    row: 'an operator resumes it',
    from: at('held'),
    event: { kind: 'operator_resume', actor: 'ops' },
    to: { state: 'closed', until: 0, cooldownMs: 1000, actor: 'ops' },
  },
];

describe('the partner state machine, row by row', () => {
  it('has a case here for every row of the table, in its order', () => {
    expect(ROWS.map((r) => r.row)).toEqual(TRANSITIONS.map((t) => t.when));
  });

  it.each(ROWS)('$from.state, $event.kind: $row', ({ from, event, to }) => {
    const next = nextState(from, event, NOW, rules);
    expect(next).toMatchObject({ ...to, version: from.version + 1, since: NOW });
  });
});

describe('what changes nothing', () => {
  it.each<[string, PartnerState, CircuitEvent]>([
    ['a partner where 1 attempt in 4 fails', at('closed'), outcomes(400, 100)],
    ['a partner that fails every attempt, but too few to judge', at('closed'), outcomes(19, 19)],
    ['89 % failed', at('closed'), outcomes(100, 89)],
    ['half-open with fewer probe answers than it takes', at('half_open'), outcomes(10, 10, 2, 2)],
    ['half-open with 3 probes failed but one answered: a broken order or two, not a partner down', at('half_open'), outcomes(10, 10, 1, 3)],
    ['an open circuit hearing of callbacks sent before it opened', at('open', { until: NOW + 1000 }), outcomes(100, 100, 0, 0)],
    [
      'an open circuit told Retry-After by a callback sent before it opened',
      at('open', { until: NOW + 1000 }),
      { kind: 'retry_after', pauseMs: 9000, status: 503 },
    ],
    [
      'a pause told a Retry-After that ends sooner',
      at('paused', { until: NOW + 9000 }),
      { kind: 'retry_after', pauseMs: 1000, status: 503 },
    ],
    ['a partner held by hand, whatever its callbacks say', at('held'), outcomes(100, 100)],
    ['a timed state before its end', at('open', { until: NOW + 1 }), { kind: 'time' }],
    ['a hold by hand without an end, as time passes', at('held', { until: 0 }), { kind: 'time' }],
    ['resuming a closed partner', at('closed'), { kind: 'operator_resume', actor: 'ops' }],
    [
      'a quiet look at a half-open partner with a probe out',
      at('half_open', { since: NOW - 120_000 }),
      { kind: 'quiet', inFlight: 1, lastAnswerAt: 0 },
    ],
    [
      'a quiet look at a partner half-open for less than a minute',
      at('open', { until: NOW - 59_000 }),
      { kind: 'quiet', inFlight: 0, lastAnswerAt: 0 },
    ],
    [
      'a quiet look at a half-open partner that answered a probe within the minute',
      at('half_open', { since: NOW - 120_000 }),
      { kind: 'quiet', inFlight: 0, lastAnswerAt: NOW - 30_000 },
    ],
    ['a quiet look at a held partner', at('held'), { kind: 'quiet', inFlight: 0, lastAnswerAt: 0 }],
  ])('%s', (_name, state, event) => {
    expect(nextState(state, event, NOW, rules)).toBeUndefined();
  });
});

describe('a timed state whose end has come', () => {
  it('is half-open under the same version, so that probes admitted now count for it', () => {
    expect(effectiveState(at('paused', { until: NOW - 1 }), NOW, rules)).toMatchObject({ state: 'half_open', version: 7, since: NOW - 1 });
    // and its probes decide as half-open's do, on the version the store still keeps
    expect(nextState(at('open', { until: NOW - 1 }), outcomes(3, 0, 3, 0), NOW, rules)).toMatchObject({ state: 'closed', version: 8 });
  });

  it('doubles the cooldown when it opens again, up to the maximum', () => {
    const reopened = nextState(at('open', { until: NOW - 1, cooldownMs: 3000 }), outcomes(3, 3, 0, 3), NOW, rules);
    expect(reopened).toMatchObject({ state: 'open', cooldownMs: 4000, until: NOW + 4000 });
  });
});

describe('admission and what the producer may lease', () => {
  it.each([
    [at('closed'), { send: true, limit: 8, probe: false }, undefined],
    [at('half_open'), { send: true, limit: 3, probe: true }, 3],
    [at('open', { until: NOW + 1000 }), { send: false, until: NOW + 1000 }, 0],
    [at('paused', { until: NOW + 2000 }), { send: false, until: NOW + 2000 }, 0],
    [at('held'), { send: false, until: NOW + 5000 }, 0],
    [at('open', { until: NOW }), { send: true, limit: 3, probe: true }, 3],
  ])('%o', (state, expected, lease) => {
    expect(admission(state, NOW, rules)).toMatchObject(expected);
    expect(leaseLimit(state, NOW, rules)).toBe(lease);
  });
});

describe('docs/partners.md', () => {
  it('has the transition table the code has, row for row', () => {
    const doc = readFileSync(path.join(__dirname, '..', '..', 'docs', 'partners.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Transitions'), doc.indexOf('### Constants'));
    const rows = section
      .split('\n')
      .filter((line) => /^\| [a-z_, ]+ \| [a-z_]+ \|/.test(line) && !line.startsWith('| from '))
      .map((line) =>
        line
          .split('|')
          .slice(1, 5)
          .map((cell) => cell.trim()),
      );
    expect(rows).toEqual(TRANSITIONS.map((t) => [t.from.join(', '), t.on, t.when, t.to]));
  });
});
