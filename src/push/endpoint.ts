// Which push endpoints the server may reach. A browser names its push service's URL and the
// server POSTs to it, so an endpoint must not turn the server into a way into its own network:
// an https URL without credentials whose host is a public name or a public unicast address
// (checked when a browser subscribes), and whose addresses, resolved when a push is sent, are
// all public (checked on every connection, so a name that later resolves to a private address
// is refused too). `push.allowHosts` lets an operator name exceptions (a private push relay).
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { ParleyError } from '../errors.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** The exceptions of `push.allowHosts`: host names, and address ranges, that may be private. */
export interface EndpointPolicy {
  readonly names: ReadonlySet<string>;
  readonly ranges: ReadonlyArray<[Address, number]>;
}

/**
 * The policy of a `push.allowHosts` list: each entry a host name, an IP address or a CIDR
 * range. Throws an Error naming a bad entry.
 */
export function endpointPolicy(allow: readonly string[]): EndpointPolicy {
  const names = new Set<string>();
  const ranges: Array<[Address, number]> = [];
  for (const raw of allow) {
    const entry = raw.trim().toLowerCase();
    if (entry.includes('/')) {
      try {
        ranges.push(ipaddr.parseCIDR(entry));
      } catch {
        throw new Error(`"${raw}" is not a CIDR range`);
      }
    } else if (ipaddr.isValid(entry.replace(/^\[(.*)\]$/, '$1'))) {
      // ::ffff:10.0.0.1 is 10.0.0.1: addresses are compared in their IPv4 form when they have one.
      const a = ipaddr.process(entry.replace(/^\[(.*)\]$/, '$1'));
      ranges.push([a, a.kind() === 'ipv4' ? 32 : 128]);
    } else if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/.test(entry)) {
      names.add(bareName(entry));
    } else {
      throw new Error(`"${raw}" is neither a host name, an IP address nor a CIDR range`);
    }
  }
  return { names, ranges };
}

const bareName = (host: string): string => host.toLowerCase().replace(/\.$/, '');

// Names that lead into the local machine or network rather than to a push service: localhost
// (RFC 6761), mDNS (.local, RFC 6762), the private-use .internal and .home.arpa (RFC 8375),
// .localdomain, and single-label names (completed by the resolver's search domains).
const LOCAL_NAME = /(^|\.)(localhost|local|internal|localdomain|home\.arpa)$/;

/** The IPv4 address inside an IPv6 one that only carries it (mapped, translated, NAT64), or null. */
function embeddedIPv4(a: ipaddr.IPv6): ipaddr.IPv4 | null {
  if (a.isIPv4MappedAddress()) return a.toIPv4Address();
  const p = a.parts;
  const last32 = () => new ipaddr.IPv4([p[6]! >> 8, p[6]! & 0xff, p[7]! >> 8, p[7]! & 0xff]);
  // ::ffff:0:a.b.c.d (RFC 6145) and the NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
  if (a.range() === 'rfc6145') return last32();
  if (p[0] === 0x64 && p[1] === 0xff9b && p.slice(2, 6).every((x) => x === 0)) return last32();
  return null;
}

/**
 * Whether the server may connect to this address: a public unicast address, or one in the
 * allowed ranges. Loopback, private (RFC 1918), link-local, unique-local (fc00::/7), CGNAT
 * (100.64/10), unspecified, multicast, broadcast, documentation and reserved ranges are not
 * public, whether written as IPv4 or inside IPv6 (::ffff:127.0.0.1).
 */
export function addressAllowed(address: string | Address, policy: EndpointPolicy): boolean {
  let a: Address = typeof address === 'string' ? ipaddr.parse(address) : address;
  if (a.kind() === 'ipv6') a = embeddedIPv4(a as ipaddr.IPv6) ?? a;
  for (const [net, bits] of policy.ranges) if (net.kind() === a.kind() && a.match(net, bits)) return true;
  if (a.kind() === 'ipv4') return a.range() === 'unicast';
  const v6 = a as ipaddr.IPv6;
  // ::a.b.c.d, the deprecated IPv4-compatible form: nothing real lives there.
  if (v6.parts.slice(0, 6).every((x) => x === 0)) return false;
  // The NAT64 prefixes for local use (64:ff9b:1::/48) lead into the local network.
  if (v6.range() === 'rfc6052') return false;
  return v6.range() === 'unicast';
}

/** The host of a URL as an address, or null when it is a name. */
function literal(hostname: string): Address | null {
  const h = hostname.replace(/^\[(.*)\]$/, '$1');
  return ipaddr.isValid(h) && (h.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(h)) ? ipaddr.parse(h) : null;
}

/**
 * What a browser may subscribe with: an https URL without credentials whose host is a public
 * name or address (or one `push.allowHosts` names). Throws `invalid` naming the endpoint.
 */
export function checkEndpoint(endpoint: string, policy: EndpointPolicy): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ParleyError('invalid', 'endpoint: not a URL', { field: 'endpoint' });
  }
  if (url.protocol !== 'https:') throw new ParleyError('invalid', 'endpoint: must be an https URL', { field: 'endpoint' });
  if (url.username || url.password) throw new ParleyError('invalid', 'endpoint: must not carry credentials', { field: 'endpoint' });
  const address = literal(url.hostname);
  if (address) {
    if (!addressAllowed(address, policy)) {
      throw new ParleyError(
        'invalid',
        `endpoint: ${url.hostname} is not a public address (loopback, private, link-local and other local addresses are refused)`,
        { field: 'endpoint' },
      );
    }
    return url;
  }
  const name = bareName(url.hostname);
  if (!policy.names.has(name) && (LOCAL_NAME.test(name) || !name.includes('.'))) {
    throw new ParleyError('invalid', `endpoint: ${name} is not a public host name (localhost, single-label and local names are refused)`, {
      field: 'endpoint',
    });
  }
  return url;
}

/** A push endpoint that leads to an address the server does not connect to. */
export class RefusedAddressError extends Error {
  readonly code = 'ERR_PUSH_ADDRESS_REFUSED';
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(host === address ? `${host} is not a public address` : `${host} resolves to ${address}, which is not a public address`);
  }
}

/**
 * Checks, just before connecting, where an endpoint leads: an address written in the URL
 * must be allowed; a name is resolved by the returned `lookup`, which gives the connection
 * only addresses it checked and refuses the name when any of its addresses is not allowed
 * (no second resolution can answer differently). A name `push.allowHosts` lists is trusted
 * as it resolves. Throws RefusedAddressError for an address written in the URL.
 */
export function connectGuard(url: URL, policy: EndpointPolicy): { lookup?: LookupFunction } {
  const address = literal(url.hostname);
  if (address) {
    if (!addressAllowed(address, policy)) throw new RefusedAddressError(address.toString(), address.toString());
    return {};
  }
  if (policy.names.has(bareName(url.hostname))) return {};
  const lookup = (
    host: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(host, { ...options, all: true }, (err, found) => {
      if (err) return callback(err, []);
      if (found.length === 0) return callback(Object.assign(new Error(`${host} has no address`), { code: 'ENOTFOUND' }), []);
      const bad = found.find((f) => !addressAllowed(f.address, policy));
      if (bad) return callback(new RefusedAddressError(host, bad.address), []);
      if (options.all) return callback(null, found);
      callback(null, found[0]!.address, found[0]!.family);
    });
  };
  return { lookup: lookup };
}
