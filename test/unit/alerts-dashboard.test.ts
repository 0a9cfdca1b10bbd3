// The alert rules and the Grafana dashboard query only metrics the daemon registers, and the dashboard
// is one Grafana can load. (promtool checks the rules' syntax and behaviour: test/integration/promtool.test.ts.)
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { Histogram } from 'prom-client';
import { parse } from 'yaml';

import { Metrics } from '../../src/observability/metrics';

const root = path.join(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Target {
  expr?: string;
  datasource?: { uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title?: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
}
interface Dashboard {
  schemaVersion: number;
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
}

const rules: Rule[] = (parse(read('ops/prometheus/alerts.yml')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const dashboard = JSON.parse(read('ops/grafana/order-callbacks.json')) as Dashboard;
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');

/** Prometheus' own series, not the daemon's. */
const PROMETHEUS_SERIES = ['up'];

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'atan2',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: what is left once strings, label matchers, ranges,
 * grouping clauses, functions (a name before "("), keywords and numbers are taken out. Grafana's
 * variables ($job, $__rate_interval) only appear inside matchers and ranges.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = [...bare.matchAll(/(?<![\w.$])[a-zA-Z_:][\w:]*/g)]
    .filter((m) => !/^\s*\(/.test(bare.slice(m.index + m[0].length)))
    .map((m) => m[0])
    .filter((name) => !KEYWORDS.has(name.toLowerCase()));
  return [...new Set(names)];
}

/** A Grafana variable query `label_values(metric{...}, label)` reads that metric; `label_values(label)` none. */
function variableMetricNames(query: string): string[] {
  const match = /^label_values\(\s*([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?\s*,/.exec(query.trim());
  return match ? [match[1]] : [];
}

/** Every series name the daemon's registry exposes: histograms as their _bucket, _sum and _count. */
function registeredSeries(): Set<string> {
  // Nothing is read from the sources until a scrape; listing the names needs none of them.
  const metrics = new Metrics({
    db: undefined as never,
    queue: undefined as never,
    partners: undefined as never,
    partnerRules: undefined as never,
  });
  const names = new Set<string>();
  for (const metric of metrics.registry.getMetricsAsArray()) {
    const { name } = metric as unknown as { name: string };
    if (metric instanceof Histogram) for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    else names.add(name);
  }
  metrics.registry.clear();
  return names;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function anchors(markdown: string): Set<string> {
  const headings = markdown.split('\n').filter((line) => /^#{1,6} /.test(line));
  return new Set(
    headings.map((h) =>
      h
        .replace(/^#+ /, '')
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-'),
    ),
  );
}

describe('metricNames', () => {
  it('finds the selected metrics and nothing else of an expression', () => {
    const expr = `sum without (instance, outcome) (rate(a_total{outcome="failed", job=~"$job"}[$__rate_interval])) / on (job) group_left b_seconds > 0.05
      and histogram_quantile(0.99, sum by (le) (rate(c_bucket[5m]))) > 1e3 or absent(up{job="x"}) offset 5m`;
    expect(metricNames(expr).sort()).toEqual(['a_total', 'b_seconds', 'c_bucket', 'up']);
  });

  it('reads the metric of a label_values query', () => {
    expect(variableMetricNames('label_values(order_callbacks_deliveries_total{job=~"$job"}, instance)')).toEqual([
      'order_callbacks_deliveries_total',
    ]);
    expect(variableMetricNames('label_values(job)')).toEqual([]);
  });
});

describe('every metric the alerts and the dashboard read is one the daemon serves', () => {
  const known = new Set([...registeredSeries(), ...PROMETHEUS_SERIES]);

  it('the registry lists histograms by their series', () => {
    expect(known.has('order_callbacks_callback_duration_seconds_bucket')).toBe(true);
    expect(known.has('order_callbacks_deliveries_total')).toBe(true);
    expect(known.has('order_callbacks_process_cpu_seconds_total')).toBe(true);
  });

  it('alert rules', () => {
    const used = rules.flatMap((rule) => metricNames(rule.expr).map((name) => `${rule.alert}: ${name}`));
    expect(used.length).toBeGreaterThanOrEqual(rules.length);
    expect(used.filter((entry) => !known.has(entry.split(': ')[1]))).toEqual([]);
  });

  it('dashboard panels and variables', () => {
    const fromPanels = queryPanels.flatMap((p) =>
      (p.targets ?? []).flatMap((t) => metricNames(t.expr ?? '').map((name) => `${p.title}: ${name}`)),
    );
    const fromVariables = dashboard.templating.list
      .filter((v) => v.type === 'query')
      .flatMap((v) => variableMetricNames(typeof v.query === 'string' ? v.query : v.query.query).map((name) => `$${v.name}: ${name}`));
    expect(fromVariables.length).toBeGreaterThan(0);
    expect([...fromPanels, ...fromVariables].filter((entry) => !known.has(entry.split(': ')[1]))).toEqual([]);
  });
});

describe('the alert rules', () => {
  const runbook = anchors(read('docs/operations.md'));

  it.each(rules.map((rule) => [rule.alert, rule]))(
    '%s says how bad, for how long, what it means and where the runbook is',
    (_name, rule) => {
      expect(rule.for).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning']).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary).toBeTruthy();
      expect(rule.annotations?.description).toBeTruthy();
      const [file, anchor] = (rule.annotations?.runbook_url ?? '').split('#');
      expect(file).toBe('docs/operations.md');
      expect([...runbook]).toContain(anchor);
    },
  );

  it('docs/operations.md has a section for every alert, and no section for an alert that is not a rule', () => {
    const sections = read('docs/operations.md')
      .split('\n')
      .filter((line) => /^### OrderCallbacks\w+$/.test(line))
      .map((line) => line.slice(4));
    expect(sections.sort()).toEqual(rules.map((r) => r.alert).sort());
  });
});

describe('the Grafana dashboard', () => {
  it('is a dashboard of a recent schema, with a uid and a title', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    expect(dashboard.title).toBeTruthy();
  });

  it('takes its data source, job and instances from variables', () => {
    const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.get('job')?.type).toBe('query');
    expect(variables.get('instance')?.type).toBe('query');
  });

  it('every panel queries the variable data source, and filters by job and instance', () => {
    expect(queryPanels.length).toBeGreaterThan(10);
    for (const panel of queryPanels) {
      expect({ panel: panel.title, uid: panel.datasource?.uid }).toEqual({ panel: panel.title, uid: '${datasource}' });
      expect(panel.targets?.length).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect({ panel: panel.title, uid: target.datasource?.uid }).toEqual({ panel: panel.title, uid: '${datasource}' });
        expect(target.expr).toMatch(/job=~"\$job", instance=~"\$instance"/);
      }
    }
  });

  it('panel ids are unique, and panels fit the 24-column grid without overlapping', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const overlaps: string[] = [];
    dashboard.panels.forEach((a, i) => {
      expect(a.gridPos.x + a.gridPos.w).toBeLessThanOrEqual(24);
      for (const b of dashboard.panels.slice(i + 1)) {
        const apart =
          a.gridPos.x + a.gridPos.w <= b.gridPos.x ||
          b.gridPos.x + b.gridPos.w <= a.gridPos.x ||
          a.gridPos.y + a.gridPos.h <= b.gridPos.y ||
          b.gridPos.y + b.gridPos.h <= a.gridPos.y;
        if (!apart) overlaps.push(`${a.title} / ${b.title}`);
      }
    });
    expect(overlaps).toEqual([]);
  });
});
