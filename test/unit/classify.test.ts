import { classifyAnswer, parseStatusList } from '../../src/delivery/classify';
import { classifyError } from '../../src/delivery/classify-error';
import { UnsafeDestinationError } from '../../src/errors/unsafe-destination-error';

describe('classifyAnswer', () => {
  it.each([200, 201, 202, 204, 299])('HTTP %i is delivered', (status) => {
    expect(classifyAnswer({ status })).toEqual({ kind: 'delivered' });
  });

  it.each([301, 302, 307, 308])('HTTP %i is retried and never followed', (status) => {
    expect(classifyAnswer({ status })).toEqual({ kind: 'retry', reason: `HTTP ${status} redirect (not followed)` });
  });

  it.each([401, 403, 408, 409, 425, 429, 500, 502, 503, 504])('HTTP %i is retried, keeping Retry-After', (status) => {
    expect(classifyAnswer({ status, retryAfterMs: 3000, bodySnippet: 'busy' })).toEqual({
      kind: 'retry',
      reason: `HTTP ${status}: busy`,
      retryAfterMs: 3000,
    });
  });

  it.each([400, 404, 410, 413, 422])('HTTP %i fails for good with the status in the reason', (status) => {
    expect(classifyAnswer({ status })).toEqual({ kind: 'failed', reason: `HTTP ${status}` });
  });

  it('fails for good exactly on the statuses FINAL_STATUSES lists, redirects included', () => {
    const final = parseStatusList('401, 403, 302, 410-412');
    expect([...final].sort()).toEqual([302, 401, 403, 410, 411, 412]);
    for (const status of [401, 403, 302, 411])
      expect(classifyAnswer({ status }, final)).toEqual({ kind: 'failed', reason: `HTTP ${status}` });
    for (const status of [400, 404, 500, 301]) expect(classifyAnswer({ status }, final).kind).toBe('retry');
  });

  it.each(['200', '4xx', '404-400', '600', 'abc', '400-700'])('refuses "%s" as a list of final statuses', (text) => {
    expect(() => parseStatusList(text)).toThrow(/status from 300 to 599/);
  });
});

describe('classifyError', () => {
  it('a refused destination anywhere in the cause chain fails for good', () => {
    const refusal = new UnsafeDestinationError('localhost resolves to 127.0.0.1 (loopback), which is not allowed');
    const wrapped = Object.assign(new Error('fetch failed'), { cause: Object.assign(new Error('connect'), { cause: refusal }) });
    expect(classifyError(wrapped)).toEqual({ kind: 'failed', reason: refusal.message });
  });

  it('our own timeout and a claim running out are retried, saying which', () => {
    expect(classifyError(new Error('aborted'), 'timeout', 1500)).toEqual({ kind: 'retry', reason: 'timed out after 1500 ms' });
    expect(classifyError(new Error('aborted'), 'claim')).toMatchObject({ kind: 'retry', reason: expect.stringMatching(/claim/) });
  });

  it('a network error is retried with its code', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(classifyError(err)).toEqual({ kind: 'retry', reason: 'network error: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:9' });
  });
});
