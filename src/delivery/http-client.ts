import { Agent } from 'undici';

import { createGuardedLookup } from './address-guard';
import type { DestinationPolicy } from './destination-policy';

export interface HttpClientOptions {
  timeoutMs: number;
  destinations: DestinationPolicy;
}

/**
 * One keep-alive pool per partner origin (undici's Agent keeps a Pool per origin). When private
 * destinations are not allowed, every connection resolves its host through the guarded lookup, so
 * the address that was checked is the address that is connected to.
 */
export function createHttpClient(options: HttpClientOptions): Agent {
  return new Agent({
    connect: {
      timeout: Math.min(options.timeoutMs, 5000),
      ...(options.destinations.allowPrivate ? {} : { lookup: createGuardedLookup(options.destinations) }),
    },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    keepAliveTimeout: 30_000,
    // Redirects are never followed: undici's Agent does not follow them unless told to.
  });
}
