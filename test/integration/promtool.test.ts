// Prometheus' own checker on the alert rules, their unit tests, and the dashboard's queries.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { stringify } from 'yaml';

const PROMTOOL = process.env.PROMTOOL_PATH ?? 'promtool';
const root = path.join(__dirname, '..', '..');
let scratch: string;

interface Result {
  code: number;
  output: string;
}

async function promtool(...args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await promisify(execFile)(PROMTOOL, args, { cwd: root, timeout: 30_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const failed = err as NodeJS.ErrnoException & { code?: number | string; stdout?: string; stderr?: string };
    // A missing promtool is a failure, never a skip: npm test's set-up check installs Debian's prometheus package.
    if (failed.code === 'ENOENT')
      throw new Error(`no ${PROMTOOL} on PATH: apt-get install prometheus (it provides promtool), or set PROMTOOL_PATH`);
    return { code: typeof failed.code === 'number' ? failed.code : -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

/** A rules file recording each query, so that `promtool check rules` parses every one of them. */
function recordingRules(exprs: string[]): string {
  const file = path.join(scratch, `queries-${Math.random().toString(36).slice(2)}.yml`);
  const rules = exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr }));
  writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
  return file;
}

beforeAll(() => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'promtool-'));
});

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

it('promtool finds the alert rules valid', async () => {
  const result = await promtool('check', 'rules', 'ops/prometheus/alerts.yml');
  expect(result).toEqual({ code: 0, output: expect.stringMatching(/SUCCESS: \d+ rules found/) });
});

it('the alert rules pass their unit tests (ops/prometheus/alerts.test.yml)', async () => {
  const result = await promtool('test', 'rules', 'ops/prometheus/alerts.test.yml');
  expect(result).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });
});

it('every query of the Grafana dashboard parses as PromQL, with its variables filled in', async () => {
  const dashboard = JSON.parse(readFileSync(path.join(root, 'ops/grafana/order-callbacks.json'), 'utf8')) as {
    panels: { targets?: { expr?: string }[] }[];
  };
  const exprs = dashboard.panels
    .flatMap((p) => p.targets ?? [])
    .map((t) => t.expr ?? '')
    .map((expr) => expr.replaceAll('$job', 'order-callbacks').replaceAll('$instance', '.*').replaceAll('$__rate_interval', '1m'));
  expect(exprs.length).toBeGreaterThan(10);
  const result = await promtool('check', 'rules', recordingRules(exprs));
  expect(result).toEqual({ code: 0, output: expect.stringContaining(`SUCCESS: ${exprs.length} rules found`) });
  // The same check on a query that does not parse fails: it reads the queries, not only the file.
  const broken = await promtool('check', 'rules', recordingRules([...exprs, 'sum(rate(order_callbacks_enqueued_total[5m])']));
  expect(broken.code).not.toBe(0);
});
