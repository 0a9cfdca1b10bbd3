import { UnsafeDestinationError } from '../errors/unsafe-destination-error';
import type { Verdict } from './classify';

/** Why a request that got no answer ended, as the sender saw it. */
export type AbortCause = 'timeout' | 'claim' | 'shutdown';

/**
 * What a request that threw means for the order. A refused destination is final; everything else
 * the network can do (refused, reset, DNS failure, timeout) may heal, so it is retried.
 */
export function classifyError(err: unknown, abortCause?: AbortCause, timeoutMs?: number): Verdict {
  const refusal = findInChain(err, (e) => e instanceof UnsafeDestinationError);
  if (refusal) return { kind: 'failed', reason: (refusal as Error).message };
  if (abortCause === 'timeout') return { kind: 'retry', reason: `timed out after ${timeoutMs} ms` };
  if (abortCause === 'claim') return { kind: 'retry', reason: 'aborted: the claim on the order was running out' };
  const coded = findInChain(err, (e) => typeof (e as { code?: unknown }).code === 'string') as
    { code: string; message?: string } | undefined;
  const message = err instanceof Error ? err.message : String(err);
  return { kind: 'retry', reason: `network error: ${coded ? `${coded.code} ` : ''}${message}`.slice(0, 500) };
}

function findInChain(err: unknown, match: (e: unknown) => boolean): unknown {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (match(e)) return e;
  }
  return undefined;
}
