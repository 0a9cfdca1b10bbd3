import { type DestinationPolicy, forbiddenRange, parseCidrList, refusalFor } from '../../src/delivery/destination-policy';
import { prepareCallback as prepare } from '../../src/delivery/prepare-callback';

const STRICT: DestinationPolicy = { allowPrivate: false, allowedRanges: [], allowedPorts: new Set([80, 443]) };
const PERMISSIVE: DestinationPolicy = { allowPrivate: true, allowedRanges: [] };
const LIMIT = 256 * 1024;
const prepareCallback = (order: Parameters<typeof prepare>[0], allowPrivate: boolean) =>
  prepare(order, allowPrivate ? PERMISSIVE : STRICT, LIMIT);
import { redactUrl } from '../../src/observability/redact-url';

describe('forbiddenRange', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['169.254.169.254', 'linkLocal'],
    ['224.0.0.1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['::1', 'loopback'],
    ['fc00::1', 'uniqueLocal'],
    ['fe80::1', 'linkLocal'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:127.0.0.1', 'loopback'],
  ])('%s is refused (%s)', (address, range) => {
    expect(forbiddenRange(address)).toBe(range);
  });

  it.each(['8.8.8.8', '2001:4860:4860::8888'])('%s, public unicast, is allowed', (address) => {
    expect(forbiddenRange(address)).toBeUndefined();
  });

  it('says so when given something that is not an address', () => {
    expect(forbiddenRange('example.com')).toBe('not an IP address');
  });
});

describe('refusalFor', () => {
  const withAllowList: DestinationPolicy = { ...STRICT, allowedRanges: parseCidrList('10.20.0.0/16, fd00:1::/32') };
  it('lets an allow-listed private range through, and nothing next to it', () => {
    expect(refusalFor('10.20.3.4', withAllowList)).toBeUndefined();
    expect(refusalFor('::ffff:10.20.3.4', withAllowList)).toBeUndefined();
    expect(refusalFor('fd00:1::5', withAllowList)).toBeUndefined();
    expect(refusalFor('10.21.0.1', withAllowList)).toBe('private');
    expect(refusalFor('127.0.0.1', withAllowList)).toBe('loopback');
  });
  it('allows everything when private destinations are allowed', () => {
    expect(refusalFor('127.0.0.1', PERMISSIVE)).toBeUndefined();
  });
});

describe('prepareCallback', () => {
  const order = (callbackUrl: string | null, payload: unknown = { a: 1 }) => ({ id: '7', callbackUrl, payload });

  it('builds the body from the order id and its payload', () => {
    const prepared = prepareCallback(order('https://partner.example/hook?x=1'), false);
    expect(prepared).toEqual({
      ok: true,
      callback: { url: new URL('https://partner.example/hook?x=1'), body: '{"orderId":"7","payload":{"a":1}}' },
    });
  });

  it.each([
    [null, /callback_url is empty/],
    ['  ', /callback_url is empty/],
    ['not a url', /not a valid URL/],
    ['ftp://partner.example/x', /scheme ftp is not http or https/],
    ['javascript:alert(1)', /scheme javascript is not http or https/],
    [`https://partner.example/${'a'.repeat(3000)}`, /longer than 2048/],
  ])('refuses callback_url %p', (url, reason) => {
    expect(prepareCallback(order(url), true)).toEqual({ ok: false, reason: expect.stringMatching(reason) });
  });

  it.each([
    'http://127.0.0.1/x',
    'http://2130706433/x',
    'http://0x7f.1/x',
    'http://10.1.2.3/x',
    'http://169.254.169.254/latest/meta-data',
    'http://[::1]/x',
    'http://[::ffff:127.0.0.1]/x',
  ])('refuses the IP literal in %s unless private destinations are allowed', (url) => {
    expect(prepareCallback(order(url), false)).toMatchObject({ ok: false, reason: expect.stringMatching(/not allowed/) });
    expect(prepareCallback(order(url), true)).toMatchObject({ ok: true });
  });

  it('refuses ports that are not allowed, counting the scheme default', () => {
    expect(prepareCallback(order('https://partner.example:8443/x'), false)).toEqual({
      ok: false,
      reason: 'callback_url port 8443 is not allowed (CALLBACK_ALLOWED_PORTS)',
    });
    expect(prepareCallback(order('http://partner.example:80/x'), false)).toMatchObject({ ok: true });
    expect(prepareCallback(order('https://partner.example:8443/x'), true)).toMatchObject({ ok: true });
  });

  it('refuses credentials in the URL', () => {
    expect(prepareCallback(order('https://user:secret@partner.example/x'), true)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/carries credentials/),
    });
  });

  it('refuses a body over MAX_PAYLOAD_BYTES, naming both sizes', () => {
    const big = { blob: 'x'.repeat(2000) };
    expect(prepare(order('https://partner.example/', big), STRICT, 1024)).toEqual({
      ok: false,
      reason: 'callback body is 2037 bytes, over the 1024-byte limit (MAX_PAYLOAD_BYTES)',
    });
  });

  it('leaves host names to the connect-time check', () => {
    expect(prepareCallback(order('http://localhost/x'), false)).toMatchObject({ ok: true });
  });

  it.each([null, [1, 2], 'text', 42])('refuses payload %p: it must be a JSON object', (payload) => {
    expect(prepareCallback(order('https://partner.example/', payload), false)).toEqual({
      ok: false,
      reason: 'payload is not a JSON object',
    });
  });
});

describe('redactUrl', () => {
  it('hides credentials in the userinfo and in secret-looking query parameters', () => {
    const redacted = redactUrl('https://user:pa55@partner.example/hook?token=abc&api_key=k&signature=s&order=9');
    expect(redacted).not.toMatch(/pa55|abc|=k&|=s&/);
    expect(redacted).toContain('order=9');
    expect(redacted).toContain('partner.example/hook');
  });

  it('cuts unparseable input short instead of echoing it whole', () => {
    expect(redactUrl('x'.repeat(200))).toHaveLength(81);
  });
});
