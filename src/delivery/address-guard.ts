import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { UnsafeDestinationError } from '../errors/unsafe-destination-error';

/**
 * Why an address may not receive callbacks, or undefined when it may. Only ordinary public unicast
 * passes: loopback, private, CGNAT, link-local (cloud metadata), multicast, reserved and the IPv6
 * equivalents all name a range. IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 inside it.
 */
export function forbiddenRange(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  const range = parsed.range();
  return range === 'unicast' ? undefined : range;
}

export function assertAllowedAddress(address: string, host: string): void {
  const range = forbiddenRange(address);
  if (range) throw new UnsafeDestinationError(`${host} resolves to ${address} (${range}), which is not allowed`);
}

/**
 * A DNS lookup for the HTTP client's connect step that refuses forbidden addresses. The check and the
 * connect use the same answer, so a name that changes its answer between the two (DNS rebinding)
 * cannot slip an internal address through.
 */
export const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 4);
    try {
      for (const { address } of addresses) assertAllowedAddress(address, hostname);
    } catch (refusal) {
      return callback(refusal as NodeJS.ErrnoException, '', 4);
    }
    if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
    const first = addresses[0];
    return callback(null, first.address, first.family);
  });
};
