import dns from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Which addresses the service may connect to when it fetches outputs or delivers webhooks: public
 * unicast only, judged on the address actually resolved and connected to.
 */
const nonPublicV4 = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  nonPublicV4.addSubnet(network, prefix, 'ipv4');

// Global unicast is 2000::/3; within it, these are special-purpose (Teredo and friends, documentation, 6to4).
const specialGlobalV6 = new BlockList();
for (const [network, prefix] of [
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['3fff::', 20],
] as const) {
  specialGlobalV6.addSubnet(network, prefix, 'ipv6');
}

/** Public unicast only: no private, loopback, link-local, multicast, shared, documentation or reserved ranges. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !nonPublicV4.check(address, 'ipv4');
  if (family !== 6 || address.includes('%')) return false;
  const groups = ipv6Groups(address);
  const embedsV4 =
    (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) || // ::ffff:a.b.c.d (IPv4-mapped)
    (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((group) => group === 0)); // 64:ff9b::a.b.c.d (NAT64)
  if (embedsV4) {
    const v4 = [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
    return !nonPublicV4.check(v4, 'ipv4');
  }
  return (groups[0]! & 0xe000) === 0x2000 && !specialGlobalV6.check(address, 'ipv6');
}

function ipv6Groups(address: string): number[] {
  // The URL parser writes a trailing dotted quad as two hex groups.
  const normalized = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const [head, tail] = normalized.split('::') as [string, string | undefined];
  const parse = (part: string) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const start = parse(head);
  const end = tail === undefined ? [] : parse(tail);
  return [...start, ...Array<number>(8 - start.length - end.length).fill(0), ...end];
}

/**
 * A DNS lookup that refuses a name if any of its addresses is not allowed; the connection uses
 * only what it returns, so an answer that changes between check and use gains nothing.
 */
export function checkedLookup(
  isAllowedAddress: (address: string) => boolean,
  refuse: (message: string) => Error,
): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const refused = addresses.find((entry) => !isAllowedAddress(entry.address));
      if (refused || addresses.length === 0) {
        return callback(refuse(`${hostname} resolves to ${refused?.address ?? 'nothing'}, which is not public`), '', 0);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}
