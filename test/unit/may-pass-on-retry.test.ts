import { DatabaseError } from 'pg';

import { mayPassOnRetry } from '../../src/db/may-pass-on-retry';

/** An error as pg raises it from a Postgres ErrorResponse. */
const fromPostgres = (code: string) => Object.assign(new DatabaseError(`code ${code}`, 0, 'error'), { code, severity: 'ERROR' });

describe('mayPassOnRetry', () => {
  it.each([
    ['57P01', 'our session terminated'],
    ['57P02', 'the server crashed'],
    ['57P03', 'the server is starting'],
    ['57014', 'a statement timeout'],
    ['08006', 'a connection failure'],
    ['53300', 'too many connections'],
    ['40P01', 'a deadlock'],
    ['55P03', 'a lock timeout'],
  ])('%s (%s) may pass', (code) => {
    expect(mayPassOnRetry(fromPostgres(code))).toBe(true);
  });

  it.each([
    ['22P02', 'bad input'],
    ['23505', 'a unique violation'],
    ['42703', 'a column that does not exist'],
    ['54001', 'a statement too complex'],
  ])('%s (%s) fails the same way again', (code) => {
    expect(mayPassOnRetry(fromPostgres(code))).toBe(false);
  });

  it('what did not come from Postgres may pass: a cut connection, a pool wait, a network error', () => {
    expect(mayPassOnRetry(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(mayPassOnRetry(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).toBe(true);
    expect(mayPassOnRetry(Object.assign(new Error('Knex: Timeout acquiring a connection'), { name: 'KnexTimeoutError' }))).toBe(true);
  });
});
