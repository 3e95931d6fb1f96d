// A federation changed step by step (random services in two clusters: headless or not, ports, TTL
// and traffic-policy annotations, readiness, zones, hostnames, removals, stale clusters) against a
// fresh one built from the same cluster data after every step: the same zone, the same answers
// through a responder that kept its cache all along, each published change taking the zone before
// to the zone after, and a record count that matches the records.
// FRESH_SEEDS=1,2,... and FRESH_STEPS=n run more.
import { describe, expect, it } from 'vitest';
import { packSlice, type SlimService } from '../../src/cluster/objects.js';
import type { ClusterState } from '../../src/cluster/state.js';
import { Federation } from '../../src/federation/federation.js';
import { Responder } from '../../src/server/responder.js';
import { RRType, EdnsOption } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery, type Message } from '../../src/wire/message.js';
import { keyToName } from '../../src/wire/name.js';
import { rrText, type RR, type SoaData } from '../../src/wire/records.js';
import { zoneRecords } from '../../src/zone/masterfile.js';
import type { ZoneChange, ZoneSnapshot } from '../../src/zone/snapshot.js';
import { prng } from '../support/corpus.js';
import { testFederationSettings } from '../support/federation.js';

const CL = [
  { name: 'one', region: 'r1', zones: ['z1'] },
  { name: 'two', region: 'r2', zones: ['z2'] },
];
const NAMES = ['a', 'b', 'c'];
const ADDR = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'];
const settingsOf = (c: (typeof CL)[number]) => ({ ...c, addressMode: 'endpoints' as const, gracePeriod: 300 });

function ask(r: Responder, name: string, type: number): Message {
  return decodeMessage(r.answer(encodeQuery(name, type, { id: 1, edns: { udpSize: 4096 } }), 'tcp')!);
}
function norm(m: Message): unknown {
  const t = (r: RR) => (r.type === RRType.SOA ? rrText({ ...r, data: { ...(r.data as SoaData), serial: 0 } }) : rrText(r));
  return { rcode: m.rcode, an: m.answers.map(t).sort(), ns: m.authorities.map(t).sort(), ad: m.additionals.map(t).sort(), stale: m.edns?.options.some((o) => o.code === EdnsOption.EDE) ?? false };
}
const ms = (rs: RR[]) => {
  const m = new Map<string, number>();
  for (const r of rs) m.set(rrText(r), (m.get(rrText(r)) ?? 0) + 1);
  return m;
};
const msText = (m: Map<string, number>) => [...m].flatMap(([k, n]) => Array(n).fill(k)).sort();

function run(seedValue: number, steps: number): void {
  const rand = prng(seedValue);
  const pick = <T,>(l: readonly T[]) => l[Math.floor(rand() * l.length)];
  const fed = new Federation(testFederationSettings({ staleTtl: 5 }));
  const events: { snap: ZoneSnapshot; change: ZoneChange }[] = [];
  fed.on('published', (snap, change) => events.push({ snap, change }));
  const mine = new Responder(() => fed.snapshot);
  const clusters = new Map<string, ClusterState>();
  for (const c of CL) {
    const s = fed.addCluster(settingsOf(c));
    s.markLive();
    s.flush();
    clusters.set(c.name, s);
  }
  fed.rebuild();
  events.length = 0;
  let prev = fed.snapshot;
  try {
    for (let i = 0; i < steps; i++) {
      const c = clusters.get(pick(CL).name)!;
      const r = rand();
      const name = pick(NAMES);
      if (r < 0.3) {
        const s: SlimService = {
          namespace: 'ns', name, headless: rand() < 0.4,
          ports: rand() < 0.2 ? [] : rand() < 0.5 ? [{ name: 'http', port: pick([80, 81]), protocol: 'tcp' }] : [{ name: 'http', port: 80, protocol: 'tcp' }, { name: 'dns', port: 53, protocol: 'udp' }],
          lbAddresses: ADDR.filter(() => rand() < 0.3), lbHostnames: [], labels: {},
        };
        if (rand() < 0.3) s.ttl = pick([5, 30, 60]);
        if (rand() < 0.3) s.traffic = pick([{ policy: 'failover' }, { policy: 'all', maxAddresses: 1 }, { policy: 'nearest' }] as SlimService['traffic'][]);
        c.upsert('Service', s);
      } else if (r < 0.7) {
        c.upsert('EndpointSlice', packSlice({
          namespace: 'ns', name: `${name}-s`, service: name, addressType: 'IPv4',
          ports: [{ name: 'http', port: pick([8080, 8081]), protocol: 'tcp' }],
          endpoints: ADDR.filter(() => rand() < 0.5).map((a) => ({ addresses: [a], ready: rand() < 0.8, zone: pick(['z1', 'z2', undefined]), hostname: rand() < 0.5 ? `h${a.at(-1)}` : undefined })),
        }));
      } else if (r < 0.8) {
        c.remove(pick(['Service', 'EndpointSlice'] as const), 'ns', rand() < 0.5 ? name : `${name}-s`);
      } else if (r < 0.9) {
        if (c.health === 'stale' || rand() < 0.5) c.markLive();
        else c.markBroken('watch failed');
      }
      c.flush();
      if (rand() < 0.3) {
        // changes rebuilt later
        c.flush();
      }
      fed.rebuild();
      const at = `seed ${seedValue} step ${i}`;
      for (const { snap, change } of events.splice(0)) {
        const all = zoneRecords(snap);
        expect(snap.recordCount, `count ${at}`).toBe(all.length);
        if (change.unlisted === 0) {
          const applied = ms(zoneRecords(prev).slice(1));
          for (const x of change.removed) {
            const n = applied.get(rrText(x)) ?? 0;
            expect(n, `removed absent ${rrText(x)} ${at}`).toBeGreaterThan(0);
            if (n === 1) applied.delete(rrText(x));
            else applied.set(rrText(x), n - 1);
          }
          for (const x of change.added) applied.set(rrText(x), (applied.get(rrText(x)) ?? 0) + 1);
          expect(msText(applied), `IXFR ${at}`).toEqual(msText(ms(all.slice(1))));
        }
        prev = snap;
      }
      // A fresh federation of the same data.
      const fresh = new Federation(testFederationSettings({ staleTtl: 5 }));
      for (const cs of CL) {
        const src = clusters.get(cs.name)!;
        const f = fresh.addCluster(settingsOf(cs));
        for (const s of src.services.values()) f.upsert('Service', s);
        for (const s of src.slices.values()) f.upsert('EndpointSlice', s);
        f.markLive();
        if (src.health === 'stale') f.markBroken('watch failed');
        f.flush();
      }
      fresh.rebuild();
      const want = fresh.snapshot;
      const got = fed.snapshot;
      expect(msText(ms(zoneRecords(got).slice(1))), `AXFR ${at}`).toEqual(msText(ms(zoneRecords(want).slice(1))));
      const theirs = new Responder(() => want);
      for (const key of new Set([...got.names.keys(), ...want.names.keys()])) {
        const n = keyToName(key);
        const loc = want.names.get(key)?.locality;
        for (const t of [RRType.A, RRType.AAAA, RRType.SRV, RRType.CNAME, RRType.TXT]) {
          if (loc && t !== RRType.CNAME && t !== RRType.TXT) continue;
          expect(norm(ask(mine, n, t)), `${n}/${t} ${at}`).toEqual(norm(ask(theirs, n, t)));
        }
      }
      fresh.close();
    }
  } finally {
    fed.close();
  }
}

describe('a federation changed step by step answers as one built afresh', () => {
  const seeds = (process.env.FRESH_SEEDS ?? '1,2,3').split(',').map(Number);
  it.each(seeds)('seed %i', (s) => run(s, Number(process.env.FRESH_STEPS ?? 150)));
});
