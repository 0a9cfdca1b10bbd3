import { Webhook } from 'standardwebhooks';

import { signPayload } from '../../src/delivery/sign';
import { webhookIdFor } from '../../src/delivery/webhook-id';

// The example from the Standard Webhooks specification and its reference libraries' tests.
const SPEC_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SPEC_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const SPEC_TIMESTAMP = 1614265330;
const SPEC_BODY = '{"test": 2432232314}';
const SPEC_SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

const keyOf = (secret: string) => Buffer.from(secret.slice('whsec_'.length), 'base64');

describe('signPayload', () => {
  it('matches the Standard Webhooks test vector', () => {
    expect(signPayload(keyOf(SPEC_SECRET), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)).toBe(SPEC_SIGNATURE);
  });

  it('is accepted by the reference library, and a changed body is not', () => {
    const secret = `whsec_${Buffer.from('order-callbacks-unit-test-key').toString('base64')}`;
    const body = JSON.stringify({ orderId: '42', payload: { total: 10 } });
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': webhookIdFor('42'),
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signPayload(keyOf(secret), webhookIdFor('42'), timestamp, body),
    };
    const webhook = new Webhook(secret);
    expect(webhook.verify(body, headers)).toEqual({ orderId: '42', payload: { total: 10 } });
    expect(() => webhook.verify(body.replace('10', '11'), headers)).toThrow();
  });
});

describe('webhookIdFor', () => {
  it('is the same for every request about the same order, and differs between orders', () => {
    expect(webhookIdFor('123')).toBe(webhookIdFor('123'));
    expect(webhookIdFor('123')).not.toBe(webhookIdFor('124'));
  });
});
