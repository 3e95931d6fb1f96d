// Where the zone's persistent map (pmap.ts) files a name: two 32-bit hashes of its lookup key.
//
// The map's first seven levels take their branches from hashKey(). Its low 15 bits (three levels)
// come from the name's first two labels after any leading "_" labels, the service and namespace
// of every name a federated service gives:
//
//   svc.ns.F.D   svc.ns.F.svc.D   svc.ns.F.svc.region.D   svc.ns.F.svc.zone.region.D
//   _port._proto.svc.ns.F[.svc].D   svc.ns.svc.Z   _port._proto.svc.ns.svc.Z
//
// so a service's names share one path through the top of the trie, and a change to a service
// copies that path once, not once per name. The high 17 bits come from the whole key, and
// names that share all 32 bits part on deepHash(), an independent hash of the whole key, before
// they are kept side by side as a collision. Three levels, not more: 100,000 services leave about
// three per branch at the fourth, so a name is as deep in the trie as a plain hash would file it
// (4.8 levels on average in a zone of 1.4 million names), and lookups cost what they did.
//
// Keys are lowercase wire-format names as latin1 strings (wire/name.ts nameKey): a length
// character before each label, "\0" at the end. Any other string hashes whole.

const FNV_PRIME = 0x01000193;
/** FNV-1a's offset basis; deepHash starts elsewhere so that the two hashes part. */
const FNV_BASIS = 0x811c9dc5;
const DEEP_BASIS = 0x050c5d1f;
/** Bits of hashKey() taken from the service labels. */
const GROUP_BITS = 15;
const GROUP_MASK = (1 << GROUP_BITS) - 1;
const UNDERSCORE = 0x5f;

function fnv(h: number, key: string, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}

/**
 * The key's map hash, as a signed 32-bit integer: Node.js's V8 (32-bit small integers, no pointer
 * compression) holds that in the entry itself, where an unsigned one of 2^31 and more would be a
 * boxed number of its own (half the entries).
 */
export function hashKey(key: string): number {
  const n = key.length;
  let start = 0;
  // Leading "_" labels (an SRV name's port and protocol) are not the service's.
  while (start < n && key.charCodeAt(start) > 0 && key.charCodeAt(start + 1) === UNDERSCORE) start += key.charCodeAt(start) + 1;
  const first = key.charCodeAt(start);
  const second = start + first + 1;
  const end = second + key.charCodeAt(second) + 1;
  // Two whole labels, and a terminator or another label after them: a wire-format key.
  if (!(first > 0 && second < n && key.charCodeAt(second) > 0 && end < n)) return fnv(FNV_BASIS, key, 0, n) | 0;
  const group = fnv(FNV_BASIS, key, start, end);
  // The rest goes on from the group's state: two services' names of one form differ here too.
  const rest = fnv(fnv(group, key, 0, start), key, end, n);
  return ((group & GROUP_MASK) | (rest & ~GROUP_MASK)) | 0;
}

/** A second hash of the whole key, for the map's levels below hashKey()'s 32 bits. */
export function deepHash(key: string): number {
  return fnv(DEEP_BASIS, key, 0, key.length) | 0;
}
