import type { MinuteCounts } from '../db/reports/recent-outcomes';
import type { Status } from './collect-status';

/** Everything that reaches the page passes through here: errors and hosts come from partners. */
function escapeHtml(value: string | number | null | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatAge(seconds: number | null): string {
  if (seconds === null) return 'none waiting';
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

const CHART = { width: 720, height: 180, pad: 24 };

/** Deliveries (green) and failures (red) per minute as stacked bars, drawn on the server: no script needed. */
export function renderChart(minutes: MinuteCounts[]): string {
  const most = Math.max(1, ...minutes.map((m) => m.delivered + m.failed));
  const slot = (CHART.width - CHART.pad) / Math.max(1, minutes.length);
  const scale = (n: number) => (n / most) * (CHART.height - CHART.pad);
  const bars = minutes.flatMap((m, i) => {
    const x = CHART.pad + i * slot;
    const deliveredHeight = scale(m.delivered);
    const failedHeight = scale(m.failed);
    const base = CHART.height - CHART.pad;
    const title = `${m.minute.slice(11, 16)} UTC: ${m.delivered} delivered, ${m.failed} failed`;
    const out: string[] = [];
    if (m.delivered > 0) {
      out.push(
        `<rect class="delivered" x="${x.toFixed(1)}" y="${(base - deliveredHeight).toFixed(1)}" ` +
          `width="${(slot * 0.8).toFixed(1)}" height="${deliveredHeight.toFixed(1)}"><title>${escapeHtml(title)}</title></rect>`,
      );
    }
    if (m.failed > 0) {
      out.push(
        `<rect class="failed" x="${x.toFixed(1)}" y="${(base - deliveredHeight - failedHeight).toFixed(1)}" ` +
          `width="${(slot * 0.8).toFixed(1)}" height="${failedHeight.toFixed(1)}"><title>${escapeHtml(title)}</title></rect>`,
      );
    }
    return out;
  });
  const first = minutes[0]?.minute.slice(11, 16) ?? '';
  const last = minutes[minutes.length - 1]?.minute.slice(11, 16) ?? '';
  const label = 'deliveries and failures per minute, last hour';
  return `<svg id="chart" viewBox="0 0 ${CHART.width} ${CHART.height}" role="img" aria-label="${label}">
  <line x1="${CHART.pad}" y1="${CHART.height - CHART.pad}" x2="${CHART.width}" y2="${CHART.height - CHART.pad}" stroke="#999"/>
  <text x="${CHART.pad}" y="${CHART.height - 6}" class="axis">${first}</text>
  <text x="${CHART.width - 40}" y="${CHART.height - 6}" class="axis">${last}</text>
  <text x="0" y="12" class="axis">${most}</text>
  ${bars.join('\n  ')}
</svg>`;
}

export function renderStatusPage(status: Status): string {
  const { orders } = status;
  const failures = status.recentFailures
    .map(
      (f) =>
        `<tr><td>${escapeHtml(f.orderId)}</td><td>${escapeHtml(f.failedAt)}</td><td>${escapeHtml(f.host ?? '-')}</td>` +
        `<td class="error">${escapeHtml(f.error ?? '-')}</td></tr>`,
    )
    .join('\n');
  const hosts = status.topFailingHosts
    .map((h) => `<tr><td>${escapeHtml(h.host)}${h.gone ? ' <strong>(410 Gone)</strong>' : ''}</td><td>${h.failures}</td></tr>`)
    .join('\n');
  const held =
    status.heldPartners === null
      ? '<tr><td colspan="5">unknown: Redis did not answer</td></tr>'
      : status.heldPartners
          .map(
            (p) =>
              `<tr><td>${escapeHtml(p.origin)}</td><td>${escapeHtml(p.state.replace('_', '-'))}</td><td>${escapeHtml(p.since)}</td>` +
              `<td>${escapeHtml(p.until ?? 'until resumed')}</td>` +
              `<td class="error">${escapeHtml(p.reason)}${p.actor ? ` (${escapeHtml(p.actor)})` : ''}</td></tr>`,
          )
          .join('\n') || '<tr><td colspan="5">none: every partner is closed</td></tr>';
  const links = '<a href="/api/status">/api/status</a>, metrics: <a href="/metrics">/metrics</a>';
  const legend = '<span class="swatch delivered"></span> delivered <span class="swatch failed"></span> failed for good';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="15">
<title>order-callbacks status</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
  .cards { display: flex; gap: 1em; flex-wrap: wrap; }
  .card { border: 1px solid #ddd; border-radius: 6px; padding: .8em 1.2em; min-width: 9em; }
  .card .n { font-size: 1.8em; font-weight: 600; }
  table { border-collapse: collapse; margin-top: .5em; }
  td, th { border-bottom: 1px solid #eee; padding: .3em .8em; text-align: left; vertical-align: top; }
  .error { font-family: monospace; max-width: 50em; overflow-wrap: anywhere; }
  rect.delivered { fill: #2e8b57; } rect.failed { fill: #c0392b; } .axis { font-size: 10px; fill: #666; }
  svg { width: 100%; max-width: 760px; height: auto; }
  .swatch { display: inline-block; width: .8em; height: .8em; margin-left: .8em; }
  .swatch.delivered { background: #2e8b57; } .swatch.failed { background: #c0392b; }
</style>
</head>
<body>
<h1>order-callbacks</h1>
<p>As of ${escapeHtml(status.generatedAt)} (refreshes every 15 s). JSON: ${links}.</p>
<div class="cards">
  <div class="card" id="ready"><div>ready (5)</div><div class="n">${orders.readyAtLeast ? '&ge; ' : ''}${orders.ready}</div></div>
  <div class="card" id="delivered"><div>delivered (6), estimated</div><div class="n">${orders.delivered ?? '-'}</div></div>
  <div class="card" id="failed"><div>failed (7), estimated</div><div class="n">${orders.failed ?? '-'}</div></div>
  <div class="card" id="oldest"><div>oldest ready</div><div class="n">${escapeHtml(formatAge(orders.oldestReadyAgeSeconds))}</div></div>
</div>
<h2>Deliveries and failures per minute, last hour</h2>
<p class="legend">${legend} (UTC; hover a bar for its numbers)</p>
${renderChart(status.perMinute)}
<h2>Partners held</h2>
<table id="partners"><tr><th>partner</th><th>state</th><th>since</th><th>until</th><th>why</th></tr>
${held}
</table>
<h2>Recent failures, last 24 hours</h2>
<table id="failures"><tr><th>order</th><th>failed at</th><th>host</th><th>last error</th></tr>
${failures || '<tr><td colspan="4">none</td></tr>'}
</table>
<h2>Top failing hosts, last 24 hours</h2>
<table id="hosts"><tr><th>host</th><th>failed orders</th></tr>
${hosts || '<tr><td colspan="2">none</td></tr>'}
</table>
</body>
</html>`;
}
