import { resolveActor } from '../../src/admin/actor';
import { canonicalOrderId, parseOrderId, parsePositiveInteger, parseTimestamp } from '../../src/admin/parse-options';
import { parseBatchSize, parseRequeueOptions, type RequeueOptionsInput } from '../../src/admin/requeue-selector';
import { UserError } from '../../src/errors/user-error';

function userErrorOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error('expected a UserError');
}

describe('order ids', () => {
  it('are canonical, so "007" finds the job of order 7', () => {
    expect(canonicalOrderId('007')).toBe('7');
    expect(canonicalOrderId(' 42 ')).toBe('42');
    expect(canonicalOrderId('0')).toBe('0');
    expect(canonicalOrderId('9223372036854775807')).toBe('9223372036854775807');
  });

  it.each(['abc', '-1', '1.5', '', '1e3', '9223372036854775808', '99999999999999999999999'])('%j is not an order id', (value) => {
    expect(canonicalOrderId(value)).toBeUndefined();
    expect(userErrorOf(() => parseOrderId(value))).toMatch(/order id must be a number from 0 to 9223372036854775807/);
  });
});

describe('parseTimestamp', () => {
  it.each([
    ['2026-11-24', '2026-11-24T00:00:00.000Z'],
    ['2026-11-24T10:00:00Z', '2026-11-24T10:00:00.000Z'],
    ['2026-11-24T10:00', '2026-11-24T10:00:00.000Z'], // no zone: UTC, whatever the machine says
    ['2026-11-24 10:00:05.25', '2026-11-24T10:00:05.250Z'],
    ['2026-11-24T10:00:00+02:00', '2026-11-24T08:00:00.000Z'],
    ['2026-11-24T10:00:00-0530', '2026-11-24T15:30:00.000Z'],
    ['2024-02-29T23:59:59z', '2024-02-29T23:59:59.000Z'],
  ])('%s is %s', (value, iso) => {
    expect(parseTimestamp('--since', value).toISOString()).toBe(iso);
  });

  it.each([
    'yesterday',
    '2026-02-30',
    '2025-02-29',
    '2026-13-01',
    '2026-11-24T24:00',
    '2026-11-24T10:60',
    '2026-11-24T10:00+15:00',
    '1700000000',
    '24/11/2026',
  ])('%j is refused with a message naming the flag', (value) => {
    expect(userErrorOf(() => parseTimestamp('--until', value))).toMatch(/^--until: expected an ISO timestamp/);
  });
});

describe('parsePositiveInteger', () => {
  it.each(['0', '-3', '1.5', 'abc', '', '11'])('%j is refused', (value) => {
    expect(userErrorOf(() => parsePositiveInteger('--limit', value, 10))).toMatch(/^--limit: expected a whole number from 1 to 10/);
  });
  it('takes a whole number in range', () => expect(parsePositiveInteger('--limit', '10', 10)).toBe(10));
});

describe('parseRequeueOptions', () => {
  const parse = (input: RequeueOptionsInput) => parseRequeueOptions(input);

  it('needs a selector: a bare requeue would move every failed order', () => {
    expect(userErrorOf(() => parse({}))).toMatch(/say which orders/);
    expect(userErrorOf(() => parse({ limit: '10' }))).toMatch(/say which orders/);
    expect(userErrorOf(() => parse({ resendDelivered: true }))).toMatch(/say which orders/);
    expect(parse({ all: true })).toEqual({ selector: { all: true }, statuses: [7] });
    expect(parse({ all: true, limit: '5' })).toEqual({ selector: { all: true, limit: 5 }, statuses: [7] });
  });

  it('narrows with every selector given, ids canonical and without repeats', () => {
    expect(
      parse({
        id: '3, 007,7,3',
        since: '2026-01-01',
        until: '2026-01-02T00:00Z',
        errorLike: 'HTTP 5',
        callbackHost: 'Hooks.Example',
        limit: '2',
      }),
    ).toEqual({
      selector: {
        ids: ['3', '7'],
        since: new Date('2026-01-01T00:00:00Z'),
        until: new Date('2026-01-02T00:00:00Z'),
        errorLike: 'HTTP 5',
        callbackHost: 'hooks.example',
        limit: 2,
      },
      statuses: [7],
    });
  });

  it('moves 7, 6 only on purpose, and 6 alone with --status 6', () => {
    expect(parse({ id: '1' }).statuses).toEqual([7]);
    expect(parse({ id: '1', status: '7' }).statuses).toEqual([7]);
    expect(parse({ id: '1', resendDelivered: true }).statuses).toEqual([7, 6]);
    expect(parse({ id: '1', status: '6', resendDelivered: true }).statuses).toEqual([6]);
    expect(userErrorOf(() => parse({ id: '1', status: '6' }))).toMatch(/--status 6: .* needs --resend-delivered/);
    expect(userErrorOf(() => parse({ id: '1', status: '7', resendDelivered: true }))).toMatch(/--status 7 leaves delivered orders out/);
    expect(userErrorOf(() => parse({ id: '1', status: '5' }))).toMatch(/--status: only 7/);
  });

  it.each<[RequeueOptionsInput, RegExp]>([
    [{ id: '1,x' }, /^--id: .*"x" is not one/],
    [{ id: ',' }, /^--id: expected order ids/],
    [{ id: '99999999999999999999' }, /^--id: /],
    [{ since: 'yesterday' }, /^--since: expected an ISO timestamp/],
    [{ since: '2026-02-01', until: '2026-01-01' }, /^--since is after --until/],
    [{ errorLike: '  ' }, /^--error-like: give some text/],
    [{ callbackHost: 'hooks.example:443' }, /^--callback-host: .* no scheme, port or path/],
    [{ callbackHost: 'https://hooks.example/' }, /^--callback-host: /],
    [{ all: true, limit: '-3' }, /^--limit: expected a whole number/],
    [{ all: true, limit: '0' }, /^--limit: /],
    [{ all: true, id: '1' }, /^--all cannot be combined/],
  ])('refuses %j', (input, message) => {
    expect(userErrorOf(() => parse(input))).toMatch(message);
  });

  it('bounds the batch size, so one batch never holds many locks for long', () => {
    expect(parseBatchSize(undefined)).toBe(500);
    expect(parseBatchSize('100')).toBe(100);
    expect(userErrorOf(() => parseBatchSize('0'))).toMatch(/^--batch-size: /);
    expect(userErrorOf(() => parseBatchSize('10001'))).toMatch(/^--batch-size: .* to 10000/);
  });
});

describe('resolveActor', () => {
  it('is --actor when given, else the OS user, and never empty', () => {
    expect(resolveActor(' alice, INC-1 ')).toBe('alice, INC-1');
    expect(resolveActor(undefined)).toMatch(/\S/);
    expect(userErrorOf(() => resolveActor('  '))).toMatch(/^--actor: /);
  });
});
