// A Map from string keys split into 64 Maps by a hash of the key, for tables of hundreds of
// thousands of names that grow while queries wait (an initial sync, a transfer's ordering). A
// JavaScript Map grows by copying every entry into a table twice its size, in one go: at half a
// million entries that held the event loop for 30-80 ms, longer than any slice of work may
// (src/slices.ts). Split 64 ways, each copy moves a 64th of the entries.

import { randomBytes } from 'node:crypto';
import { fnv } from './fnv.js';

const SHARDS = 64;
/** Where the hash starts: random per process, so names cannot be chosen in advance to fill one shard. */
const SEED = randomBytes(4).readInt32LE(0);

/** Which Map holds `key`: FNV-1a over the key, its top 6 bits (they depend on every character). */
function shardOf(key: string): number {
  return fnv(SEED, key, 0, key.length) >>> 26;
}

export class ShardedMap<V> {
  private readonly shards = Array.from({ length: SHARDS }, () => new Map<string, V>());

  /** The Map that holds `key`, or would: a read and a write of one key for one hash of it. */
  holder(key: string): Map<string, V> {
    return this.shards[shardOf(key)];
  }

  get(key: string): V | undefined {
    return this.shards[shardOf(key)].get(key);
  }

  has(key: string): boolean {
    return this.shards[shardOf(key)].has(key);
  }

  set(key: string, value: V): this {
    this.shards[shardOf(key)].set(key, value);
    return this;
  }

  delete(key: string): boolean {
    return this.shards[shardOf(key)].delete(key);
  }

  get size(): number {
    let n = 0;
    for (const s of this.shards) n += s.size;
    return n;
  }
}
