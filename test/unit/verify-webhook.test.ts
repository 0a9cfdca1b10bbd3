import { Webhook } from 'standardwebhooks';

import { signPayload, verifyWebhook, WebhookVerificationError } from '../../src';

// The Standard Webhooks spec's example, as in its reference libraries' tests.
const SPEC = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  headers: {
    'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    'webhook-timestamp': '1614265330',
    'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  },
  body: '{"test": 2432232314}',
  now: 1614265330,
};

const OLD = `whsec_${Buffer.from('the-old-secret-of-partner-a').toString('base64')}`;
const NEW = `whsec_${Buffer.from('the-new-secret-of-partner-a').toString('base64')}`;
const key = (secret: string) => Buffer.from(secret.slice(6), 'base64');

function signed(secrets: string[], body: string, timestamp: number) {
  return {
    'webhook-id': 'order-7',
    'webhook-timestamp': String(timestamp),
    'webhook-signature': secrets.map((s) => signPayload(key(s), 'order-7', timestamp, body)).join(' '),
  };
}

describe('verifyWebhook', () => {
  it('accepts the spec vector', () => {
    expect(verifyWebhook(SPEC.secret, SPEC.headers, SPEC.body, { nowSeconds: SPEC.now })).toEqual({ test: 2432232314 });
  });

  it('agrees with the reference library on what the signer produces', () => {
    const body = '{"orderId":"7","payload":{"a":1}}';
    const headers = signed([NEW], body, Math.floor(Date.now() / 1000));
    expect(verifyWebhook(NEW, headers, body)).toEqual(new Webhook(NEW).verify(body, headers));
  });

  it("accepts any listed signature under any of the partner's secrets (rotation)", () => {
    const body = '{"orderId":"7"}';
    const now = 1_800_000_000;
    const both = signed([OLD, NEW], body, now);
    expect(verifyWebhook(OLD, both, body, { nowSeconds: now })).toEqual({ orderId: '7' });
    expect(verifyWebhook(NEW, both, body, { nowSeconds: now })).toEqual({ orderId: '7' });
    expect(verifyWebhook([NEW, OLD], signed([OLD], body, now), body, { nowSeconds: now })).toEqual({ orderId: '7' });
    const current = signed([OLD, NEW], body, Math.floor(Date.now() / 1000)); // the reference checks against the clock
    expect(new Webhook(NEW).verify(body, current)).toEqual({ orderId: '7' }); // and reads the list too
  });

  it.each([
    ['a changed body', (h: Record<string, string>) => h, '{"orderId":"8"}', /no matching signature/],
    [
      'another secret',
      (h: Record<string, string>) => ({ ...h, 'webhook-signature': signed([OLD], '{"orderId":"7"}', 1_800_000_000)['webhook-signature'] }),
      '{"orderId":"7"}',
      /no matching signature/,
    ],
    ['a changed id', (h: Record<string, string>) => ({ ...h, 'webhook-id': 'order-8' }), '{"orderId":"7"}', /no matching signature/],
    [
      'a timestamp six minutes old',
      (h: Record<string, string>) => ({ ...h, 'webhook-timestamp': String(1_800_000_000 - 360) }),
      '{"orderId":"7"}',
      /outside the tolerance/,
    ],
    [
      'a timestamp in the future',
      (h: Record<string, string>) => ({ ...h, 'webhook-timestamp': String(1_800_000_000 + 360) }),
      '{"orderId":"7"}',
      /outside the tolerance/,
    ],
    ['no signature', (h: Record<string, string>) => ({ ...h, 'webhook-signature': '' }), '{"orderId":"7"}', /missing/],
    [
      'a v2 signature only',
      (h: Record<string, string>) => ({ ...h, 'webhook-signature': h['webhook-signature'].replace('v1,', 'v2,') }),
      '{"orderId":"7"}',
      /no matching signature/,
    ],
  ])('refuses %s', (_what, tamper, body, message) => {
    const headers = tamper(signed([NEW], '{"orderId":"7"}', 1_800_000_000));
    expect(() => verifyWebhook(NEW, headers, body, { nowSeconds: 1_800_000_000 })).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook(NEW, headers, body, { nowSeconds: 1_800_000_000 })).toThrow(message);
  });
});
