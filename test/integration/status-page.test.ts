import os from 'node:os';
import path from 'node:path';

import { Redis } from 'ioredis';
import { type Browser, chromium } from 'playwright-core';

import type { PartnerState } from '../../src/partners/partner-circuit';
import { RedisPartnerDirectory } from '../../src/partners/partner-directory';
import { daemonEnv, startTestDaemon, stopAllDaemons } from '../helpers/daemons';
import { createTestDatabase, insertOrders, type TestDatabase } from '../helpers/database';
import { freePort } from '../helpers/free-port';
import { obliterateQueue, SHARED_REDIS_URL, uniqueQueueName } from '../helpers/queue';

// The same search as `npm test`'s set-up, which installs Chromium when it finds none.
const { findChromium, CHROMIUM_NAMES } = require('../../scripts/lib/test-tools');
const CHROMIUM: string | undefined = findChromium(process.env);

let database: TestDatabase;
let queueName: string;
let browser: Browser;

beforeAll(async () => {
  // A missing browser is a failure, never a skip.
  if (!CHROMIUM)
    throw new Error(
      `no Chromium at CHROMIUM_PATH or on PATH (${CHROMIUM_NAMES.join(', ')}): \`npm test\` installs Debian's chromium, or says what to install`,
    );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  database = await createTestDatabase();
  queueName = uniqueQueueName();
});

afterAll(async () => {
  await browser?.close();
  await stopAllDaemons();
  await database?.drop(); // undefined when beforeAll failed: the reason is that failure, not this
  if (queueName) await obliterateQueue(queueName);
});

it('the status page shows what the database holds, renders the chart, and does not run what partners send', async () => {
  await insertOrders(database.db, [1, 2, 3], 'https://partner.example/cb', {}, 2); // not ready yet: the producer leaves them be
  await insertOrders(database.db, [4, 5, 6, 7], 'https://partner.example/cb', {}, 6);
  await insertOrders(database.db, [8, 9], 'https://evil.example/cb', {}, 7);
  await database
    .db('orders')
    .where({ id: 8 })
    .update({ last_error: 'HTTP 400: <script>window.__pwned = true</script><img src=x onerror="window.__pwned=true">' });
  await database
    .db('orders')
    .where({ id: 9 })
    .update({ last_error: 'HTTP 404: no such order, see https://admin:hunter2@evil.example/help?token=s3cret&lang=en' });
  const minuteAgo = new Date(Date.now() - 60_000);
  await database.db('delivery_log').insert([
    ...[4, 5, 6, 7].map((id) => ({
      order_id: id,
      attempt: 1,
      started_at: minuteAgo,
      duration_ms: 5,
      http_status: 200,
      outcome: 'delivered',
      worker: 'w',
    })),
    { order_id: 8, attempt: 1, started_at: new Date(), duration_ms: 5, http_status: 400, outcome: 'failed', worker: 'w' },
    { order_id: 9, attempt: 1, started_at: new Date(), duration_ms: 5, http_status: 404, outcome: 'failed', worker: 'w' },
  ]);

  // Orders at 6 and 7 are the planner's estimates: exact for a table this small once analyzed.
  await database.db.raw('ANALYZE orders');

  // A partner held by hand: the page lists it, with why and who.
  const redis = new Redis(SHARED_REDIS_URL);
  try {
    const held: PartnerState = {
      state: 'held',
      version: 1,
      since: Date.now(),
      until: 0,
      cooldownMs: 30_000,
      reason: 'their <b>maintenance</b>',
      actor: 'ops',
    };
    await new RedisPartnerDirectory(redis, queueName).note('https://held.example', held);
  } finally {
    redis.disconnect();
  }

  const daemon = await startTestDaemon('producer', daemonEnv(database.url, queueName, { METRICS_PORT: String(await freePort()) }));
  const page = await browser.newPage();
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => (dialogs.push(dialog.message()), void dialog.dismiss()));
  const response = await page.goto(`http://127.0.0.1:${daemon.opsPort}/`);
  expect(response?.status()).toBe(200);
  // No script may run on this page, whatever gets into it: the browser enforces it, not only escaping.
  expect(response?.headers()['content-security-policy']).toMatch(/default-src 'none'/);
  expect(response?.headers()['content-security-policy']).not.toMatch(/script-src/);

  expect(await page.textContent('#ready .n')).toBe('0');
  expect(await page.textContent('#delivered .n')).toBe('4');
  expect(await page.textContent('#failed .n')).toBe('2');
  expect(await page.textContent('#oldest .n')).toBe('none waiting');
  const failures = await page.textContent('#failures');
  expect(failures).toContain('HTTP 404: no such order, see https://redacted@evil.example/help?token=redacted&lang=en');
  expect(failures).not.toContain('hunter2');
  expect(failures).not.toContain('s3cret');
  expect(failures).toContain('<script>window.__pwned = true</script>'); // shown as text...
  expect(await page.evaluate('window.__pwned')).toBeUndefined(); // ...never run
  expect(dialogs).toEqual([]);
  expect(await page.textContent('#hosts')).toMatch(/evil\.example\s*2/);
  expect(await page.textContent('#partners')).toMatch(
    /https:\/\/held\.example\s*held\s*.*until resumed\s*their <b>maintenance<\/b> \(ops\)/,
  );

  // The chart: a drawn bar per minute that had deliveries, green for delivered and red for failed.
  const bars = await page.$$eval('#chart rect', (rects) =>
    rects.map((r) => ({
      cls: r.getAttribute('class'),
      height: r.getBoundingClientRect().height,
      fill: (globalThis as unknown as { getComputedStyle(e: unknown): { fill: string } }).getComputedStyle(r).fill,
    })),
  );
  expect(bars.filter((b) => b.cls === 'delivered')).toHaveLength(1);
  expect(bars.filter((b) => b.cls === 'failed')).toHaveLength(1);
  expect(bars.every((b) => b.height > 0)).toBe(true);
  expect(bars.find((b) => b.cls === 'delivered')?.fill).toBe('rgb(46, 139, 87)');
  await page.screenshot({ path: path.join(os.tmpdir(), 'order-callbacks-status-page.png'), fullPage: true });

  const api = (await (await fetch(`http://127.0.0.1:${daemon.opsPort}/api/status`)).json()) as {
    orders: unknown;
    perMinute: { delivered: number }[];
    recentFailures: { orderId: string; error: string }[];
  };
  expect(api.orders).toEqual({ ready: 0, readyAtLeast: false, delivered: 4, failed: 2, other: 3, oldestReadyAgeSeconds: null });
  expect(api.perMinute).toHaveLength(60);
  expect(api.perMinute.reduce((sum, m) => sum + m.delivered, 0)).toBe(4);
  expect(api.recentFailures.find((f) => f.orderId === '9')?.error).toBe(
    'HTTP 404: no such order, see https://redacted@evil.example/help?token=redacted&lang=en',
  );
});
