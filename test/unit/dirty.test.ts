// The queue of services to rebuild: urgent ones first, a collection marked at once taken key by
// key, every service rebuilt once however many times it was marked before it was taken, and again
// when it is marked after.
import { describe, expect, it } from 'vitest';
import { DirtyServices } from '../../src/federation/dirty.js';

/** Every key taken until nothing is left (the passed-over steps left out). */
const drain = (d: DirtyServices) => [...d.take()].filter((k): k is string => k !== null);

describe('DirtyServices', () => {
  it('takes urgent services first, then those marked one by one, then collections, each key once', () => {
    const d = new DirtyServices();
    expect(d.empty).toBe(true);
    d.addAll(['a', 'b', 'c']);
    d.add('x');
    d.add('b');
    d.add('u', true);
    d.addAll(new Set(['c', 'd', 'a']));
    expect(d.empty).toBe(false);
    expect(drain(d)).toEqual(['u', 'x', 'b', 'a', 'c', 'd']);
    expect(d.empty).toBe(true);
    expect(drain(d)).toEqual([]);
  });

  it('a service marked both urgent and not is taken once, as urgent', () => {
    const d = new DirtyServices();
    d.add('s');
    d.add('t');
    d.add('s', true);
    expect(drain(d)).toEqual(['s', 't']);
  });

  it('copies a collection when it is marked: later changes to it do not change what is taken', () => {
    const d = new DirtyServices();
    const present = new Set(['a', 'b']);
    d.addAll(present);
    present.delete('a');
    present.add('z');
    expect(drain(d)).toEqual(['a', 'b']);
  });

  it('a service taken and marked again is taken again, whichever way it was marked', () => {
    const d = new DirtyServices();
    d.addAll(['a', 'b', 'c']);
    const steps = d.take();
    expect(steps.next().value).toBe('a');
    // Marked again after it was taken (a watch event while the reload goes on): taken again.
    d.add('a', true);
    expect(steps.next().value).toBe('a');
    expect(steps.next().value).toBe('b');
    // A new collection after "a" and "b" were taken asks for their rebuild after it.
    d.addAll(['b', 'a', 'c']);
    expect(drain(d)).toEqual(['c', 'b', 'a']);
  });

  it('a collection whose keys were all taken already passes them over one step at a time', () => {
    const d = new DirtyServices();
    d.addAll(['a', 'b']);
    d.addAll(['a', 'b']);
    // The second copy of each key is a step of its own (null), so a caller can stop between any two.
    expect([...d.take()]).toEqual(['a', 'b', null, null]);
    expect(d.empty).toBe(true);
  });

  it('a generator left early loses nothing: the next one goes on where it stopped', () => {
    const d = new DirtyServices();
    d.addAll(['a', 'b', 'c']);
    for (const k of d.take()) if (k === 'a') break;
    expect(drain(d)).toEqual(['b', 'c']);
  });
});
