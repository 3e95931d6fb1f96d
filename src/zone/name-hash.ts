// Where the zone's persistent map (pmap.ts) files a name: two 32-bit hashes of its lookup key.
//
// The map's first seven levels take their branches from hashKey(). Its low 15 bits (three levels)
// come from the name's first two labels after any leading "_" labels, the service and namespace
// of each name a federated service gives itself:
//
//   svc.ns.F.D   svc.ns.F.svc.D   svc.ns.F.svc.region.D   svc.ns.F.svc.zone.region.D
//   _port._proto.svc.ns.F[.svc].D   svc.ns.svc.Z   _port._proto.svc.ns.svc.Z
//
// so those names share one path through the top of the trie, and a change to a service copies
// that path once, not once per name. A headless service's endpoint names (host.cluster.svc.ns...)
// group on their host and cluster instead, and empty non-terminals on their first two labels:
// a grouping is only where a name is filed, so it is never wrong, only less shared. The high 17
// bits come from the whole key, and names that share all 32 bits part on deepHash(), a second
// hash of the whole key, before they are kept side by side as a collision. Three levels, not
// more: 100,000 services leave about three per branch at the fourth, so a name is as deep in the
// trie as a plain hash would file it (4.8 levels on average in a zone of 1.4 million names), and
// lookups cost what they did.
//
// Tenants choose labels (service, namespace, port and host names), so the hashes start from
// secrets drawn when the process starts: names made to collide in one process's hashes, which
// would pile up in one collision node and make every lookup near them scan it, cannot be worked
// out in advance. Each hash ends with MurmurHash3's finaliser, so that its low bits, which pick
// the first branches, depend on every bit of the state (FNV-1a's lowest bits depend only on the
// lowest bits of what it hashed).
//
// Keys are lowercase wire-format names as latin1 strings (wire/name.ts nameKey): a length
// character before each label, "\0" at the end. A string without two whole labels and something
// after them hashes whole.
import { randomBytes } from 'node:crypto';
import { fnv } from '../fnv.js';

const secrets = randomBytes(8);
/** Where hashKey() starts: random per process. */
const KEY_SEED = secrets.readInt32LE(0);
/** Where deepHash() starts: another secret, never KEY_SEED (both would hash a short key alike). */
const DEEP_SEED = secrets.readInt32LE(4) === KEY_SEED ? ~KEY_SEED : secrets.readInt32LE(4);
/** Bits of hashKey() taken from the service labels. */
const GROUP_BITS = 15;
const GROUP_MASK = (1 << GROUP_BITS) - 1;
const UNDERSCORE = 0x5f;

/** MurmurHash3's 32-bit finaliser: every output bit depends on every input bit. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
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
  if (!(first > 0 && second < n && key.charCodeAt(second) > 0 && end < n)) return mix(fnv(KEY_SEED, key, 0, n)) | 0;
  const group = fnv(KEY_SEED, key, start, end);
  // The rest goes on from the group's state: two services' names of one form differ here too.
  const rest = fnv(fnv(group, key, 0, start), key, end, n);
  return ((mix(group) & GROUP_MASK) | (mix(rest) & ~GROUP_MASK)) | 0;
}

/** A second hash of the whole key, for the map's levels below hashKey()'s 32 bits. */
export function deepHash(key: string): number {
  return mix(fnv(DEEP_SEED, key, 0, key.length)) | 0;
}
