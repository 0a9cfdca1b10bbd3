import { loadConfig } from '../../src/config';
import { deliverOrder, type DeliveryDeps } from '../../src/delivery/deliver-order';
import { createHttpClient } from '../../src/delivery/http-client';
import type { SigningKeys } from '../../src/delivery/signing-keys';
import { createLogger } from '../../src/observability/logger';
import { LocalPartnerStore } from '../../src/partners/local-partner-store';
import { LocalPartnerDirectory } from '../../src/partners/partner-directory';
import { PartnerGate } from '../../src/partners/partner-gate';
import { storeTimings } from '../../src/partners/partner-store';
import { batchedOrderWrites } from '../../src/worker/batched-order-writes';
import { createTestDatabase, getOrder, insertOrders, type TestDatabase } from '../helpers/database';
import { Receiver } from '../helpers/receiver';

// One attempt, end to end on the real database and a real partner: what it leaves behind when our own
// code fails between the claim and the record.
let database: TestDatabase;
let receiver: Receiver;
let gate: PartnerGate;
const config = loadConfig({
  CALLBACK_ALLOW_PRIVATE: 'true',
  CALLBACK_SECRET: `whsec_${Buffer.from('0123456789abcdef0123').toString('base64')}`,
  RETRY_BASE_MS: '60000',
});

beforeAll(async () => {
  database = await createTestDatabase();
  receiver = await new Receiver().start();
  const timings = storeTimings(config.partnerRules.windowMs);
  const local = { store: new LocalPartnerStore(timings, 1000), directory: new LocalPartnerDirectory() };
  gate = new PartnerGate({
    shared: local,
    local,
    rules: config.partnerRules,
    callbackTimeoutMs: 1000,
    workerId: 'w',
    logger: createLogger('silent'),
  });
});

afterAll(async () => {
  gate.stop();
  await receiver.stop();
  await database.drop();
});

it('an exception in our own code between the claim and the record is recorded as a failed attempt, with its error', async () => {
  await insertOrders(database.db, [1], receiver.url());
  const broken = {
    keysFor: async () => {
      throw new TypeError('keys went missing');
    },
  } as unknown as SigningKeys;
  const http = createHttpClient({ timeoutMs: 1000, destinations: config.destinations });
  const deps: DeliveryDeps = {
    db: database.db,
    orders: batchedOrderWrites(database.db, config),
    http,
    config,
    logger: createLogger('silent'),
    workerId: 'w',
    signingKeys: broken,
    partners: gate,
  };
  try {
    expect(await deliverOrder(deps, '1', new AbortController().signal)).toBe('retry');
  } finally {
    await http.close();
  }
  const order = await getOrder(database.db, 1);
  expect(order).toMatchObject({ status: 5, attempts: 1, last_error: 'internal error: keys went missing', claim_token: null });
  expect(order.next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 20_000); // its backoff, not the claim's end
  expect(await database.db('delivery_log').where({ order_id: 1 }).select('outcome', 'error')).toEqual([
    { outcome: 'retry', error: 'internal error: keys went missing' },
  ]);
  expect(receiver.requests).toEqual([]);
});
