// Narrowing an answer to one window of addresses (traffic policies with fedns.io/max-addresses):
// the indexed narrowing gives what filtering the whole answer gives, for random answers and
// windows, and a capped service of 40,000 endpoints answers in time that follows the window.
import { describe, expect, it } from 'vitest';
import { Federation } from '../../src/federation/federation.js';
import { Responder } from '../../src/server/responder.js';
import { narrowed } from '../../src/server/narrow.js';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import type { RR } from '../../src/wire/records.js';
import type { Answer } from '../../src/zone/node.js';
import { seed, svc, testFederationSettings, thousandSlice } from '../support/federation.js';

/** The definition: every address record outside the windows goes, SRV records whose target keeps none go, empty sets go. */
function byFilter(ans: Answer, windows: ReadonlySet<string>[]): Answer {
  const keep = (a: string) => windows.some((w) => w.has(a));
  const isAddr = (rr: RR) => rr.type === RRType.A || rr.type === RRType.AAAA;
  const filter = (set: RR[]) => (set.length && isAddr(set[0]) ? set.filter((rr) => keep(rr.data as string)) : set);
  const additional = ans.additional.map(filter).filter((set) => set.length > 0);
  const targets = new Set(additional.flatMap((set) => set.map((rr) => rr.name)));
  const answer = ans.answer
    .map((set) => (set.length && set[0].type === RRType.SRV ? set.filter((rr) => targets.has((rr.data as { target: string }).target)) : filter(set)))
    .filter((set) => set.length > 0);
  return { ...ans, answer, additional };
}

function random(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('an answer narrowed to a window of addresses', () => {
  it('is what filtering the whole answer gives, for random answers and windows', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = random(seed);
      const n = (k: number) => Math.floor(r() * k);
      const pool = Array.from({ length: 1 + n(12) }, (_, i) => (r() < 0.7 ? `10.0.0.${i}` : `2001:db8::${i}`));
      const targets = Array.from({ length: 1 + n(6) }, (_, i) => `t${i}.example.com.`);
      const addrSet = (name: string): RR[] =>
        pool.filter(() => r() < 0.5).map((data) => ({ name, type: data.includes(':') ? RRType.AAAA : RRType.A, ttl: 30, data }));
      const answer: RR[][] = [];
      if (r() < 0.3) answer.push([{ name: 'a.example.com.', type: RRType.CNAME, ttl: 30, data: 's.example.com.' }]);
      if (r() < 0.5) answer.push(addrSet('s.example.com.'));
      else answer.push(targets.filter(() => r() < 0.8).map((target, i) => ({ name: '_p._tcp.s.example.com.', type: RRType.SRV, ttl: 30, data: { priority: 0, weight: 1, port: 80 + i, target } })));
      const additional: RR[][] = targets.map(addrSet);
      if (r() < 0.3) additional.push([{ name: 'ns.example.com.', type: RRType.TXT, ttl: 30, data: ['x'] }]);
      if (r() < 0.3) additional.push([]);
      const ans: Answer = { answer, additional };
      for (let w = 0; w < 5; w++) {
        const windows = Array.from({ length: 1 + n(2) }, () => new Set(pool.filter(() => r() < 0.3)));
        expect(narrowed(ans, windows), `seed ${seed}`).toEqual(byFilter(ans, windows));
      }
    }
  });

  it('of a capped service of 40,000 endpoints costs what the window holds, query after query', () => {
    const fed = new Federation(testFederationSettings());
    const a = fed.addCluster({ name: 'a', region: 'r1', zones: [], addressMode: 'endpoints', gracePeriod: 300 });
    const slices = Array.from({ length: 40 }, (_, k) => thousandSlice('big', k, { ports: [{ name: 'p', port: 80, protocol: 'tcp' }] }));
    seed(a, [svc('big', [], { headless: true, ports: [], traffic: { maxAddresses: 1 } }), ...slices]);
    fed.rebuild();
    const responder = new Responder(() => fed.snapshot);
    const seen = new Set<string>();
    const t = performance.now();
    for (const [name, type] of [['big.ns.fed.example.com.', RRType.A], ['_p._tcp.big.ns.fed.example.com.', RRType.SRV]] as const) {
      const q = encodeQuery(name, type);
      for (let i = 0; i < 1000; i++) {
        const m = decodeMessage(responder.answer(q, 'udp')!);
        expect(m.answers.length).toBe(1);
        if (type === RRType.SRV) expect(m.additionals.filter((rr) => rr.type === RRType.A).length).toBe(1);
        seen.add(String(type === RRType.A ? m.answers[0].data : (m.answers[0].data as { target: string }).target));
      }
    }
    // Each query its own window, in turn: 2,000 answers, 2,000 different records. Filtering the
    // whole answer took 2 ms an A query and 7 an SRV one (17 s here); the bound is wide for a busy machine.
    expect(seen.size).toBe(2000);
    expect(performance.now() - t).toBeLessThan(4000);
    fed.close();
  });
});
