import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** Where callbacks may go. Built once from config; judged for every address a callback would reach. */
export interface DestinationPolicy {
  /** CALLBACK_ALLOW_PRIVATE: loopback, private and link-local destinations are fine (tests, on-premises). */
  allowPrivate: boolean;
  /** CALLBACK_ALLOWED_CIDRS: ranges allowed even though they are not public. */
  allowedRanges: readonly [Address, number][];
  /** CALLBACK_ALLOWED_PORTS; undefined means any port. */
  allowedPorts?: ReadonlySet<number>;
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address inside it, for every check here. */
function normalize(address: string): Address | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  const parsed = ipaddr.parse(address);
  return parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress() ? (parsed as ipaddr.IPv6).toIPv4Address() : parsed;
}

/**
 * The special-purpose range an address is in ('loopback', 'private', 'linkLocal', 'carrierGradeNat',
 * 'multicast', 'unspecified', 'reserved', 'uniqueLocal'...), or undefined for ordinary public unicast.
 */
export function forbiddenRange(address: string): string | undefined {
  const parsed = normalize(address);
  if (!parsed) return 'not an IP address';
  const range = parsed.range();
  return range === 'unicast' ? undefined : range;
}

/** Why the policy refuses this address, or undefined when a callback may connect to it. */
export function refusalFor(address: string, policy: DestinationPolicy): string | undefined {
  if (policy.allowPrivate) return undefined;
  const range = forbiddenRange(address);
  if (!range) return undefined;
  const parsed = normalize(address);
  if (parsed && policy.allowedRanges.some(([net, bits]) => net.kind() === parsed.kind() && parsed.match(net, bits))) return undefined;
  return range;
}

/** Parses CALLBACK_ALLOWED_CIDRS; throws with the offending entry. */
export function parseCidrList(value: string): [Address, number][] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      try {
        return ipaddr.parseCIDR(entry);
      } catch {
        throw new Error(`${JSON.stringify(entry)} is not a CIDR range like 10.20.0.0/16 or fd00::/8`);
      }
    });
}
