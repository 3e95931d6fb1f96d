// Empty non-terminals as ZoneBuilder keeps them: a name that no owner names and that has names
// below it is an empty non-terminal, and nothing else is. The builder counts, for every name, the
// owners with names below it, and adds and drops those nodes as owners' names come and go; these
// walks give owners names that nest in each other (listed child before parent as often as after),
// move them, share them between owners and drop them, and after every step compare the zone with
// the set worked out from every owner's names alone.
import { describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { keyToName, nameKey, parentKey } from '../../src/wire/name.js';
import type { NameSpec } from '../../src/zone/node.js';
import { ZoneBuilder } from '../../src/zone/snapshot.js';
import { prng } from '../support/corpus.js';
import { testFederationSettings } from '../support/federation.js';

const apex = testFederationSettings().apex;
const APEX_KEY = nameKey(apex.domain);

const spec = (name: string): NameSpec => ({ name, rrsets: new Map([[RRType.TXT, [{ name, type: RRType.TXT, ttl: 30, data: [name] }]]]) });

/** Every empty non-terminal of the builder's zone now, and every name its owners place. */
function zoneNow(b: ZoneBuilder): { ents: string[]; named: string[] } {
  b.publish();
  const ents: string[] = [];
  const named: string[] = [];
  for (const node of b.snapshotNow.names.values()) {
    if (node.key === APEX_KEY || node.owner === '@') continue;
    if (node.owner === '') {
      expect(node.isEmptyNonTerminal, `${node.name} has no owner and records`).toBe(true);
      ents.push(node.name);
    } else named.push(node.name);
  }
  return { ents: ents.sort(), named: named.sort() };
}

/** What the zone should hold, from the owners' names alone. */
function expected(owners: Map<string, string[]>): { ents: string[]; named: string[] } {
  const named = new Set<string>();
  for (const names of owners.values()) for (const n of names) named.add(nameKey(n));
  const ents = new Set<string>();
  for (const key of named)
    for (let k = parentKey(key); k.length > APEX_KEY.length; k = parentKey(k)) if (!named.has(k)) ents.add(k);
  return { ents: [...ents].map(keyToName).sort(), named: [...named].map(keyToName).sort() };
}

describe('empty non-terminals', () => {
  it('go when the names below them go, whichever order an owner lists its names in', () => {
    const b = new ZoneBuilder(apex);
    b.setOwner('ns/a', [spec('x.y.z.example.com.'), spec('y.z.example.com.'), spec('q.z.example.com.')]);
    expect(zoneNow(b).ents).toEqual(['z.example.com.']);
    // The child listed before its parent, both given up at once.
    b.setOwner('ns/a', [spec('q.z.example.com.')]);
    expect(zoneNow(b)).toEqual({ ents: ['z.example.com.'], named: ['q.z.example.com.'] });
    b.setOwner('ns/a', []);
    expect(zoneNow(b)).toEqual({ ents: [], named: [] });
  });

  it('turn into names and back as owners take and give up the name itself', () => {
    const b = new ZoneBuilder(apex);
    b.setOwner('ns/a', [spec('x.y.example.com.')]);
    expect(zoneNow(b).ents).toEqual(['y.example.com.']);
    // Another owner names the empty non-terminal, then gives it up: it is one again.
    b.setOwner('ns/b', [spec('y.example.com.')]);
    expect(zoneNow(b)).toEqual({ ents: [], named: ['x.y.example.com.', 'y.example.com.'] });
    b.setOwner('ns/b', []);
    expect(zoneNow(b)).toEqual({ ents: ['y.example.com.'], named: ['x.y.example.com.'] });
    // One owner swaps the child for the parent in one change, and back.
    b.setOwner('ns/a', [spec('y.example.com.')]);
    expect(zoneNow(b)).toEqual({ ents: [], named: ['y.example.com.'] });
    b.setOwner('ns/a', [spec('w.x.y.example.com.')]);
    expect(zoneNow(b)).toEqual({ ents: ['x.y.example.com.', 'y.example.com.'], named: ['w.x.y.example.com.'] });
  });

  it('match the owners names after every step of random walks', () => {
    const labels = ['a', 'b', 'c'];
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const rand = prng(seed);
      const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
      const randomName = () => {
        const depth = 1 + Math.floor(rand() * 4);
        return `${Array.from({ length: depth }, () => pick(labels)).join('.')}.example.com.`;
      };
      const b = new ZoneBuilder(apex);
      const owners = new Map<string, string[]>();
      for (let step = 0; step < 300; step++) {
        const owner = `ns/o${Math.floor(rand() * 5)}`;
        const names = rand() < 0.15 ? [] : [...new Set(Array.from({ length: 1 + Math.floor(rand() * 4) }, randomName))];
        b.setOwner(owner, names.map(spec));
        if (names.length) owners.set(owner, names);
        else owners.delete(owner);
        expect(zoneNow(b), `seed ${seed}, step ${step}: ${owner} -> ${names.join(' ') || 'nothing'}`).toEqual(expected(owners));
      }
    }
  });
});
