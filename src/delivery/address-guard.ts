import dns from 'node:dns';
import type { LookupFunction } from 'node:net';

import { UnsafeDestinationError } from '../errors/unsafe-destination-error';
import { type DestinationPolicy, refusalFor } from './destination-policy';

/**
 * A DNS lookup for the HTTP client's connect step that refuses the whole answer when any address in
 * it is refused. The check and the connect use the same answer, so a name that changes its answer
 * between the two (DNS rebinding) cannot slip an internal address through.
 */
export function createGuardedLookup(policy: DestinationPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 4);
      for (const { address } of addresses) {
        const range = refusalFor(address, policy);
        if (range) {
          const refusal = new UnsafeDestinationError(`${hostname} resolves to ${address} (${range}), which is not allowed`);
          return callback(refusal, '', 4);
        }
      }
      if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      return callback(null, first.address, first.family);
    });
  };
}
