// The queue of services to rebuild: urgent ones first, a collection marked at once taken key by
// key when its turn comes, every service rebuilt once however many times it was marked before it
// was taken, and again when it is marked after.
import { describe, expect, it } from 'vitest';
import { DirtyServices } from '../../src/federation/dirty.js';

/** Every key taken until nothing is left (the passed-over steps left out). */
const drain = (d: DirtyServices) => [...d.take()].filter((k): k is string => k !== null);

/** A collection of these keys, counting how often it is read. */
function collection(...keys: string[]) {
  const c = { keys: new Set(keys), reads: 0, read: () => (c.reads++, c.keys) };
  return c;
}

describe('DirtyServices', () => {
  it('takes urgent services first, then those marked one by one, then collections, each key once', () => {
    const d = new DirtyServices();
    expect(d.empty).toBe(true);
    const one = collection('a', 'b', 'c');
    const two = collection('c', 'd', 'a');
    d.addAll(one, one.read);
    d.add('x');
    d.add('b');
    d.add('u', true);
    d.addAll(two, two.read);
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

  it('reads a collection when its turn comes, and holds what it read from then on', () => {
    const d = new DirtyServices();
    const present = collection('a', 'b');
    d.addAll(present, present.read);
    expect(present.reads).toBe(0);
    // Changed after the mark, before its turn: the turn takes it as it is then.
    present.keys.delete('a');
    present.keys.add('z');
    const steps = d.take();
    expect(steps.next().value).toBe('b');
    // Changed after its turn began: what it read goes on.
    present.keys.add('late');
    expect([...steps]).toEqual(['z']);
    expect(present.reads).toBe(1);
  });

  it('a collection marked again before its turn is queued once; marked once begun, it is queued again', () => {
    const d = new DirtyServices();
    const all = collection('a', 'b', 'c');
    // A flood of marks (a zone label flapping): one collection waiting, read once.
    for (let i = 0; i < 10_000; i++) d.addAll(all, all.read);
    expect(drain(d)).toEqual(['a', 'b', 'c']);
    expect(all.reads).toBe(1);
    // Begun, then marked again: the keys taken before the mark are taken again, those after once.
    d.addAll(all, all.read);
    const steps = d.take();
    expect(steps.next().value).toBe('a');
    d.addAll(all, all.read);
    d.addAll(all, all.read);
    expect([...steps].filter((k) => k !== null)).toEqual(['b', 'c', 'a']);
    expect(all.reads).toBe(3);
  });

  it('a service taken and marked again is taken again, whichever way it was marked', () => {
    const d = new DirtyServices();
    const first = collection('a', 'b', 'c');
    d.addAll(first, first.read);
    const steps = d.take();
    expect(steps.next().value).toBe('a');
    // Marked again after it was taken (a watch event while the reload goes on): taken again.
    d.add('a', true);
    expect(steps.next().value).toBe('a');
    expect(steps.next().value).toBe('b');
    // A new collection after "a" and "b" were taken asks for their rebuild after it.
    const second = collection('b', 'a', 'c');
    d.addAll(second, second.read);
    expect(drain(d)).toEqual(['c', 'b', 'a']);
  });

  it('a mark of another collection does not make those already queued take again what they took since their own marks', () => {
    const d = new DirtyServices();
    const keys = Array.from({ length: 1000 }, (_, i) => `s${i}`);
    // A reload: the services present, then each cluster's (the same services here).
    const present = collection(...keys);
    d.addAll(present, present.read);
    d.addAll({}, () => [...keys]);
    d.addAll({}, () => [...keys]);
    const steps = d.take();
    const got: string[] = [];
    for (let i = 0; i < 1000; i++) got.push(steps.next().value as string);
    // Every service taken once, after every mark; then a one-service cluster's health changes.
    d.addAll({}, () => ['tiny']);
    for (const k of steps) if (k !== null) got.push(k);
    expect(got.length).toBe(1001);
    expect(new Set(got).size).toBe(1001);
  });

  it('a collection marked again while it waits asks again for the keys taken before that mark', () => {
    const d = new DirtyServices();
    const all = collection('a', 'b');
    d.addAll(all, all.read);
    // "a", marked one by one, is taken while the collection waits...
    d.add('a');
    const steps = d.take();
    expect(steps.next().value).toBe('a');
    // ... then the collection is marked again (covered by the one waiting): "a" is asked for again.
    d.addAll(all, all.read);
    expect([...steps]).toEqual(['a', 'b']);
    expect(all.reads).toBe(1);
  });

  it('takes 200,000 services marked one by one in time that grows with their number, not its square', () => {
    // A re-list in which every slice changed marks every service one by one. A new iterator per
    // key walked past every key taken before it: 100,000 keys took 1.7 s, where one iterator
    // takes 15 ms. The bound is wide for a busy machine, and far below the square's 7 s.
    const d = new DirtyServices();
    const N = 200_000;
    for (let i = 0; i < N; i++) d.add(`ns/s${i}`, i % 100 === 0);
    const t0 = performance.now();
    let n = 0;
    for (const k of d.take()) if (k !== null) n++;
    expect(n).toBe(N);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('a collection whose keys were all taken already passes them over one step at a time', () => {
    const d = new DirtyServices();
    const one = collection('a', 'b');
    const two = collection('a', 'b');
    d.addAll(one, one.read);
    d.addAll(two, two.read);
    // The second copy of each key is a step of its own (null), so a caller can stop between any two.
    expect([...d.take()]).toEqual(['a', 'b', null, null]);
    expect(d.empty).toBe(true);
  });

  it('a generator left early loses nothing: the next one goes on where it stopped', () => {
    const d = new DirtyServices();
    const all = collection('a', 'b', 'c');
    d.addAll(all, all.read);
    for (const k of d.take()) if (k === 'a') break;
    expect(drain(d)).toEqual(['b', 'c']);
  });
});
