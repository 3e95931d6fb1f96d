// A persistent (immutable, structurally shared) map from string to value: a hash array mapped
// trie (Bagwell 2001) with 32-way branching. Updating one key copies only the path to it, so a
// zone of a million names changes one name in O(log32 n) without touching the rest, and every
// published version stays valid for whoever still reads it.
//
// Written for fedns's lookup keys (50-byte latin1 strings, fresh on every query): general-purpose
// persistent maps spend most of their time hashing such keys through a small shared cache.
// A value carries its own key and hash (the zone's names do): the trie holds the values
// themselves, one object per entry rather than a leaf beside each.
//
// Branches take 5 bits per level (the seventh and the fourteenth take the last 2): from the
// entry's hash for the first seven levels, then from deepHash(key) (name-hash.ts) for seven more,
// so keys part even when their 32-bit hashes agree (hashKey() shares bits between a service's
// names on purpose). Keys equal in both hashes are kept side by side in a collision node.
import { deepHash, hashKey } from './name-hash.js';

/**
 * What the map holds: a value that knows its key and that key's hashKey(). The map trusts `hash`
 * (a lookup hashes the key it is given): an entry whose hash is not hashKey(key) is never found.
 */
export interface MapEntry {
  readonly key: string;
  readonly hash: number;
}

/** Entries whose keys agree in both hashes. */
class Collision<V extends MapEntry> {
  constructor(
    public edit: object | null,
    public leaves: V[],
  ) {}
}

/**
 * A branch: one array of its bitmap, the edit that may change it in place (null: none), then
 * its slots. One object, not a branch object beside an array of slots: in a zone of a million
 * names most branches a change or a lookup passes through are in no CPU cache, and each object
 * read is a trip to memory. Entries and collisions are never arrays.
 */
type Branch<V extends MapEntry> = (number | object | null | Slot<V>)[];

/** A branch, a collision, or an entry (anything else). */
type Slot<V extends MapEntry> = V | Collision<V> | Branch<V>;

const BITMAP = 0;
const EDIT = 1;
/** Where a branch's slots start. */
const HEAD = 2;

const isBranch = <V extends MapEntry>(s: Slot<V>): s is Branch<V> => Array.isArray(s);
const bitmapOf = <V extends MapEntry>(b: Branch<V>) => b[BITMAP] as number;
/** The index in `b` of the slot for `bit`, set or not. */
const indexOf = <V extends MapEntry>(b: Branch<V>, bit: number) => HEAD + popcount(bitmapOf(b) & (bit - 1));

/** First shift taken from deepHash(): the entry's own hash has given its 32 bits by then. */
const DEEP = 35;
/** Shift at which both hashes are spent: what is left is a collision. */
const SPENT = 2 * DEEP;

/**
 * deepHash() of the last two keys asked: one operation below the seventh level asks for the same
 * key's (or, parting two entries, two keys') at every level.
 */
const deepKeys: [string, string] = ['', ''];
const deepValues: [number, number] = [deepHash(''), deepHash('')];
let deepNext = 0;

function deepOf(key: string): number {
  if (key === deepKeys[0]) return deepValues[0];
  if (key === deepKeys[1]) return deepValues[1];
  const h = deepHash(key);
  deepKeys[deepNext] = key;
  deepValues[deepNext] = h;
  deepNext ^= 1;
  return h;
}

/** The 5 bits that pick an entry's slot in a branch at `shift`. */
function slotOf(hash: number, key: string, shift: number): number {
  return shift < DEEP ? (hash >>> shift) & 31 : (deepOf(key) >>> (shift - DEEP)) & 31;
}

/** Both hashes agree: no branch can part the two keys. */
function sameHashes(a: MapEntry, b: MapEntry): boolean {
  return a.hash === b.hash && deepOf(a.key) === deepOf(b.key);
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

function lookup<V extends MapEntry>(root: Branch<V>, key: string, hash: number): V | undefined {
  let node: Slot<V> = root;
  let shift = 0;
  for (;;) {
    if (isBranch(node)) {
      const bit = 1 << slotOf(hash, key, shift);
      if ((bitmapOf(node) & bit) === 0) return undefined;
      node = node[indexOf(node, bit)] as Slot<V>;
      shift += 5;
    } else if (node instanceof Collision) {
      for (const l of node.leaves) if (l.key === key) return l;
      return undefined;
    } else {
      return node.key === key ? node : undefined;
    }
  }
}

interface Change {
  added: boolean;
  removed: boolean;
}

/** A node holding `a` (an entry or a collision) and `b`, whose hashes differ somewhere, at `shift`. */
function branchOf<V extends MapEntry>(edit: object, shift: number, a: V | Collision<V>, b: V): Branch<V> | Collision<V> {
  const aEntry = a instanceof Collision ? a.leaves[0] : a;
  if (shift >= SPENT) {
    const leaves = a instanceof Collision ? [...a.leaves, b] : [a, b];
    return new Collision(edit, leaves);
  }
  const ia = slotOf(aEntry.hash, aEntry.key, shift);
  const ib = slotOf(b.hash, b.key, shift);
  if (ia === ib) return [1 << ia, edit, branchOf(edit, shift + 5, a, b)];
  return ia < ib ? [(1 << ia) | (1 << ib), edit, a, b] : [(1 << ia) | (1 << ib), edit, b, a];
}

/** `node`, owned by `edit`: itself when the edit owns it already, else a copy (the version before keeps its own). */
function owned<V extends MapEntry>(node: Branch<V>, edit: object): Branch<V> {
  if (node[EDIT] === edit) return node;
  const copy = node.slice();
  copy[EDIT] = edit;
  return copy;
}

function insert<V extends MapEntry>(node: Branch<V>, shift: number, leaf: V, edit: object, ch: Change): Branch<V> {
  const bit = 1 << slotOf(leaf.hash, leaf.key, shift);
  const at = indexOf(node, bit);
  const bitmap = bitmapOf(node);
  if ((bitmap & bit) === 0) {
    ch.added = true;
    const b = owned(node, edit);
    b.splice(at, 0, leaf);
    b[BITMAP] = bitmap | bit;
    return b;
  }
  const cur = node[at] as Slot<V>;
  let next: Slot<V>;
  if (isBranch(cur)) {
    next = insert(cur, shift + 5, leaf, edit, ch);
  } else if (cur instanceof Collision) {
    if (sameHashes(cur.leaves[0], leaf)) {
      const i = cur.leaves.findIndex((l) => l.key === leaf.key);
      const leaves = cur.leaves.slice();
      if (i >= 0) leaves[i] = leaf;
      else {
        leaves.push(leaf);
        ch.added = true;
      }
      next = new Collision(edit, leaves);
    } else {
      ch.added = true;
      next = branchOf(edit, shift + 5, cur, leaf);
    }
  } else if (cur.key === leaf.key) {
    if (cur === leaf) return node;
    next = leaf;
  } else if (sameHashes(cur, leaf)) {
    ch.added = true;
    next = new Collision(edit, [cur, leaf]);
  } else {
    ch.added = true;
    next = branchOf(edit, shift + 5, cur, leaf);
  }
  if (next === cur) return node;
  const b = owned(node, edit);
  b[at] = next;
  return b;
}

function remove<V extends MapEntry>(node: Branch<V>, shift: number, key: string, hash: number, edit: object, ch: Change): Branch<V> | null {
  const bit = 1 << slotOf(hash, key, shift);
  const bitmap = bitmapOf(node);
  if ((bitmap & bit) === 0) return node;
  const at = indexOf(node, bit);
  const cur = node[at] as Slot<V>;
  let next: Slot<V> | null;
  if (isBranch(cur)) {
    next = remove(cur, shift + 5, key, hash, edit, ch);
    if (next === cur) return node;
  } else if (cur instanceof Collision) {
    const leaves = cur.leaves.filter((l) => l.key !== key);
    if (leaves.length === cur.leaves.length) return node;
    ch.removed = true;
    next = leaves.length === 1 ? leaves[0] : new Collision(edit, leaves);
  } else {
    if (cur.key !== key) return node;
    ch.removed = true;
    next = null;
  }
  if (next === null && bitmap === bit) return null;
  const b = owned(node, edit);
  if (next === null) {
    b.splice(at, 1);
    b[BITMAP] = bitmap & ~bit;
  } else b[at] = next;
  return b;
}

/** Every entry below `root`, depth first in slot order; one generator, not one per level. */
function* walk<V extends MapEntry>(root: Branch<V>): Generator<V> {
  const branches: Branch<V>[] = [root];
  const next: number[] = [HEAD];
  while (branches.length) {
    const top = branches.length - 1;
    const branch = branches[top];
    const i = next[top];
    if (i === branch.length) {
      branches.pop();
      next.pop();
      continue;
    }
    next[top] = i + 1;
    const slot = branch[i] as Slot<V>;
    if (isBranch(slot)) {
      branches.push(slot);
      next.push(HEAD);
    } else if (slot instanceof Collision) {
      for (const leaf of slot.leaves) yield leaf;
    } else {
      yield slot;
    }
  }
}

const EMPTY_ROOT: Branch<never> = [0, null];

/** An immutable map version. */
export class PersistentMap<V extends MapEntry> {
  private constructor(
    private readonly root: Branch<V>,
    readonly size: number,
  ) {}

  static empty<V extends MapEntry>(): PersistentMap<V> {
    return new PersistentMap<V>(EMPTY_ROOT as Branch<V>, 0);
  }

  /** @internal */
  static of<V extends MapEntry>(root: Branch<V>, size: number): PersistentMap<V> {
    return new PersistentMap(root, size);
  }

  get(key: string): V | undefined {
    return lookup(this.root, key, hashKey(key));
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** A draft for a batch of changes; `done()` seals it into a new version. This one is untouched. */
  edit(): MapDraft<V> {
    return new MapDraft(this.root, this.size);
  }

  *entries(): Generator<[string, V]> {
    for (const l of walk(this.root)) yield [l.key, l];
  }

  *keys(): Generator<string> {
    for (const l of walk(this.root)) yield l.key;
  }

  *values(): Generator<V> {
    yield* walk(this.root);
  }
}

/** A map being changed: nodes it created are updated in place until it is sealed. */
export class MapDraft<V extends MapEntry> {
  private token: object = {};
  private readonly ch: Change = { added: false, removed: false };

  constructor(
    private root: Branch<V>,
    private count: number,
  ) {}

  get size(): number {
    return this.count;
  }

  get(key: string): V | undefined {
    return lookup(this.root, key, hashKey(key));
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Files `entry` under its key, replacing what was there. */
  set(entry: V): this {
    const ch = this.ch;
    ch.added = false;
    this.root = insert(this.root, 0, entry, this.token, ch);
    if (ch.added) this.count++;
    return this;
  }

  delete(key: string): this {
    const ch = this.ch;
    ch.removed = false;
    this.root = remove(this.root, 0, key, hashKey(key), this.token, ch) ?? (EMPTY_ROOT as Branch<V>);
    if (ch.removed) this.count--;
    return this;
  }

  /** The new version. The draft stays usable; later edits copy instead of touching this version. */
  done(): PersistentMap<V> {
    this.token = {};
    return PersistentMap.of(this.root, this.count);
  }
}
