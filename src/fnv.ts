// FNV-1a, 32 bits: the string hash under the zone's name hashes (zone/name-hash.ts) and the
// sharded tables (sharded-map.ts). Callers start it from a per-process secret.

const FNV_PRIME = 0x01000193;

/** FNV-1a over key[from, to), going on from state `h`. */
export function fnv(h: number, key: string, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}
