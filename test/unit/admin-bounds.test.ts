import { CommanderError } from 'commander';

import { isConnectionFailure, isSessionRefusal } from '../../src/admin/connection-failure';
import { Deadline } from '../../src/admin/deadline';
import { ExitCode, exitCodeOf } from '../../src/admin/exit-codes';
import { etaMs, formatProgress, ProgressLine } from '../../src/admin/progress';
import { ConfigError } from '../../src/errors/config-error';
import { ServiceUnreachableError } from '../../src/errors/service-unreachable-error';
import { UsageError } from '../../src/errors/usage-error';
import { UserError } from '../../src/errors/user-error';

describe('exit codes', () => {
  it.each([
    [new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"), ExitCode.usage],
    [new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), ExitCode.ok],
    [new CommanderError(0, 'commander.version', '0.1.0'), ExitCode.ok],
    [new UsageError('--minutes: expected a whole number'), ExitCode.usage],
    [new ConfigError('DATABASE_URL: must be a URL'), ExitCode.usage],
    [new UserError('no order with id 5'), ExitCode.failed],
    [new ServiceUnreachableError('redis', 'redis://127.0.0.1:6379', 'connect ECONNREFUSED'), ExitCode.unreachable],
    [new Error('relation "orders" does not exist'), ExitCode.failed],
  ])('%s exits %d', (err, code) => {
    expect(exitCodeOf(err)).toBe(code);
  });
});

describe('a connection failure or an answer', () => {
  const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });
  it.each([
    [withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'), true],
    [withCode('read ECONNRESET', 'ECONNRESET'), true],
    [withCode('terminating connection due to administrator command', '57P01'), true],
    [withCode('sorry, too many clients already', '53300'), true],
    [new Error('Connection terminated unexpectedly'), true],
    [new Error('Query read timeout'), true],
    [new Error('Connection is closed.'), true],
    [new Error('Command timed out'), true],
    [withCode('relation "orders" does not exist', '42P01'), false],
    [withCode('canceling statement due to statement timeout', '57014'), false],
    [new TypeError("Cannot read properties of undefined (reading 'n')"), false],
  ])('%s: %s', (err, failure) => {
    expect(isConnectionFailure(err)).toBe(failure);
  });

  it('a refused login is an answer that refuses the session', () => {
    expect(isSessionRefusal(withCode('password authentication failed for user "x"', '28P01'))).toBe(true);
    expect(isSessionRefusal(withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'))).toBe(false);
  });
});

describe('deadline', () => {
  it('one clock for every wait: a race after it has passed fails at once, with what was asked for', async () => {
    const deadline = new Deadline(20);
    await expect(deadline.race(new Promise(() => undefined), () => new Error('late'))).rejects.toThrow('late');
    expect(deadline.expired).toBe(true);
    await expect(deadline.race(Promise.resolve(1), () => new Error('late again'))).rejects.toThrow('late again');
    deadline.end();
  });

  it('what settles first wins, and the deadline stops holding the process when ended', async () => {
    const deadline = new Deadline(60_000, 1000);
    await expect(deadline.race(Promise.resolve('answer'), () => new Error('late'))).resolves.toBe('answer');
    expect(deadline.remainingMs(31_000)).toBe(30_000);
    expect(deadline.remainingMs(99_000)).toBe(0);
    deadline.end();
  });
});

describe('requeue progress', () => {
  it.each([
    [0, 1000, 5000, null],
    [250, 1000, 5000, 15_000],
    [1000, 1000, 8000, 0],
  ])('%d of %d after %d ms: ETA %s ms', (done, total, elapsed, eta) => {
    expect(etaMs(done, total, elapsed)).toBe(eta);
  });

  it('shows done/total, percent, elapsed and the ETA', () => {
    expect(formatProgress('requeued', 250, 1000, 5000)).toBe('requeued 250 of 1000 (25%), 5s elapsed, ETA 15s');
    expect(formatProgress('requeued', 100, 100_000, 65_000)).toBe('requeued 100 of 100000 (0%), 1m05s elapsed, ETA 18h02m');
    expect(formatProgress('requeued', 0, 10, 0)).toBe('requeued 0 of 10 (0%), 0s elapsed, ETA -');
  });

  it('redraws in place at most every 250 ms, always the last state, and ends its line', () => {
    let now = 0;
    const written: string[] = [];
    const line = new ProgressLine(
      'requeued',
      (text) => written.push(text),
      () => now,
    );
    now = 100;
    line.update(10, 100); // first: drawn
    now = 200;
    line.update(20, 100); // 100 ms later: held back
    now = 300;
    line.update(30, 100); // 200 ms after the first: held back
    now = 400;
    line.update(40, 100); // 300 ms: drawn
    now = 450;
    line.update(100, 100); // done: drawn at once
    line.done();
    expect(written).toEqual([
      '\rrequeued 10 of 100 (10%), 0s elapsed, ETA 1s\x1b[K',
      '\rrequeued 40 of 100 (40%), 0s elapsed, ETA 1s\x1b[K',
      '\rrequeued 100 of 100 (100%), 0s elapsed, ETA 0s\x1b[K',
      '\n',
    ]);
  });

  it('draws the held-back state before ending, and writes nothing when there was nothing to show', () => {
    let now = 0;
    const written: string[] = [];
    const line = new ProgressLine(
      'requeued',
      (text) => written.push(text),
      () => now,
    );
    line.update(1, 3);
    now = 10;
    line.update(2, 3);
    line.done();
    expect(written.map((w) => w.replace(/,.*/, ''))).toEqual(['\rrequeued 1 of 3 (33%)', '\rrequeued 2 of 3 (66%)', '\n']);

    const silent: string[] = [];
    new ProgressLine('requeued', (text) => silent.push(text)).done();
    expect(silent).toEqual([]);
  });
});
