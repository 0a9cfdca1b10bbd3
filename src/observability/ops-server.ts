import http from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Db } from '../db/connection';
import type { CircuitRules } from '../partners/partner-circuit';
import type { PartnerDirectory } from '../partners/partner-directory';
import { collectStatus } from '../status-page/collect-status';
import { renderStatusPage } from '../status-page/render-status-page';
import { withTimeout } from '../with-timeout';
import { cachedFor } from './cached';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

/** A readiness check: resolves when the dependency answers. */
export type ReadinessCheck = () => Promise<unknown>;

const CHECK_TIMEOUT_MS = 2000;

/** Open tabs refresh every 15 s, on every replica; a few seconds of sharing keeps that off Postgres. */
const STATUS_TTL_MS = 3000;

/**
 * The page runs no script and loads nothing: the policy makes that a rule the browser enforces, so
 * partner text that ever slipped past escaping still could not run.
 */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * The operator's port: /metrics (Prometheus), /healthz (the event loop answers), /readyz (Postgres,
 * Redis and the worker are fine), / (status page) and /api/status (its data as JSON).
 */
export async function startOpsServer(options: {
  host: string;
  port: number;
  db: Db;
  /** Where the status page reads the partners that are held, and the rules to read their state by. */
  partners?: { directory: PartnerDirectory; rules: CircuitRules };
  metrics: Metrics;
  checks: Record<string, ReadinessCheck>;
  /** What works, but not as it should: named in /readyz, which stays 200 for it. */
  degraded?: () => Record<string, string>;
  logger: Logger;
}): Promise<OpsServer> {
  const { db, metrics, checks, logger } = options;
  const status = cachedFor(STATUS_TTL_MS, () => collectStatus(db, options.partners));
  const routes: Record<string, (res: http.ServerResponse) => Promise<void>> = {
    '/healthz': async (res) => send(res, 200, 'application/json', JSON.stringify({ status: 'ok' })),
    '/readyz': async (res) => {
      const failed = await failingChecks(checks);
      const degraded = options.degraded?.() ?? {};
      const detail = Object.keys(degraded).length > 0 ? { degraded } : {};
      send(
        res,
        failed.length ? 503 : 200,
        'application/json',
        JSON.stringify(failed.length ? { status: 'not ready', failed, ...detail } : { status: 'ready', ...detail }),
      );
    },
    '/metrics': async (res) => send(res, 200, metrics.registry.contentType, await metrics.registry.metrics()),
    '/api/status': async (res) => send(res, 200, 'application/json', JSON.stringify(await status())),
    '/': async (res) => send(res, 200, 'text/html; charset=utf-8', renderStatusPage(await status()), PAGE_HEADERS),
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const route = req.method === 'GET' || req.method === 'HEAD' ? routes[path] : undefined;
    if (!route) return send(res, 404, 'text/plain', 'not found\n');
    route(res).catch((err) => {
      logger.warn({ err, path }, 'ops endpoint failed');
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: options.host, port }, 'metrics, health and status page listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
  res.end(body);
}

async function failingChecks(checks: Record<string, ReadinessCheck>): Promise<string[]> {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await withTimeout(check(), CHECK_TIMEOUT_MS, `${name} did not answer`);
        return undefined;
      } catch {
        return name;
      }
    }),
  );
  return results.filter((name): name is string => name !== undefined);
}
