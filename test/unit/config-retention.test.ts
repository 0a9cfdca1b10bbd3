import { loadConfig } from '../../src/config';

describe('DELIVERY_LOG_RETENTION_DAYS', () => {
  it('keeps 30 days of delivery_log by default; 0 keeps it for ever', () => {
    expect(loadConfig({}).deliveryLogRetentionDays).toBe(30);
    expect(loadConfig({ DELIVERY_LOG_RETENTION_DAYS: '0' }).deliveryLogRetentionDays).toBe(0);
    expect(loadConfig({ DELIVERY_LOG_RETENTION_DAYS: '400' }).deliveryLogRetentionDays).toBe(400);
  });

  it.each(['-1', '1.5', 'month', '36501'])('%s stops the start with a message naming the variable', (value) => {
    expect(() => loadConfig({ DELIVERY_LOG_RETENTION_DAYS: value })).toThrow(/^DELIVERY_LOG_RETENTION_DAYS: /);
  });
});
