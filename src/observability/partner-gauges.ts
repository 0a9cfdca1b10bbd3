import { Gauge, type Registry } from 'prom-client';

import { type CircuitRules, type CircuitState, effectiveState, type PartnerState } from '../partners/partner-circuit';
import type { PartnerDirectory } from '../partners/partner-directory';
import { withTimeout } from '../with-timeout';
import { cachedFor } from './cached';

const STATES: CircuitState[] = ['closed', 'open', 'half_open', 'paused', 'held'];
/** Partners seen this recently count as known (closed unless the directory says otherwise). */
const KNOWN_WITHIN_MS = 86_400_000;
const TTL_MS = 5000;
const TIMEOUT_MS = 2000;

/**
 * Partner gauges, read from the shared directory when scraped: how many partners are in each state, and
 * which are not closed, by name, for at most `topK` of them (longest in their state first), so a fleet
 * with thousands of partners still has a bounded number of series. Dropped when Redis does not answer.
 */
export function registerPartnerGauges(registry: Registry, directory: PartnerDirectory, rules: CircuitRules, topK: number): void {
  // As they stand now: a hold whose end has passed is half-open (the directory keeps the hold).
  const read = cachedFor(TTL_MS, async () => {
    const [{ now, states }, seen] = await withTimeout(
      Promise.all([directory.notClosed(), directory.recent(KNOWN_WITHIN_MS)]),
      TIMEOUT_MS,
      'the partner directory did not answer',
    );
    const current = new Map([...states].map(([origin, state]): [string, PartnerState] => [origin, effectiveState(state, now, rules)]));
    return [{ now, states: current }, seen] as const;
  });
  new Gauge({
    name: 'order_callbacks_partners',
    help: 'Partners by state (closed: seen within a day and not held); absent when Redis does not answer',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const answer = await read().catch(() => undefined);
      if (!answer) return this.reset();
      const [{ states }, seen] = answer;
      const counts = new Map<string, number>(STATES.map((s) => [s, 0]));
      for (const state of states.values()) counts.set(state.state, (counts.get(state.state) ?? 0) + 1);
      counts.set('closed', Math.max(0, new Set([...seen, ...states.keys()]).size - states.size));
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'order_callbacks_partner_not_closed_seconds',
    help: `How long each partner that is not closed has been in its state, for the ${topK} longest; absent when Redis does not answer`,
    labelNames: ['origin', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      const answer = await read().catch(() => undefined);
      if (!answer) return;
      const [{ now, states }] = answer;
      const longest = [...states].sort((a: [string, PartnerState], b: [string, PartnerState]) => a[1].since - b[1].since).slice(0, topK);
      for (const [origin, state] of longest) this.set({ origin, state: state.state }, Math.max(0, (now - state.since) / 1000));
    },
  });
}
