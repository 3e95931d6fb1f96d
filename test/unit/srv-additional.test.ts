// An SRV name whose records stay while its targets' addresses change: its cached answer is
// encoded again with the new additional records, and no change lists its records.
import { describe, expect, it } from 'vitest';
import { Federation } from '../../src/federation/federation.js';
import { Responder } from '../../src/server/responder.js';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { rrText } from '../../src/wire/records.js';
import type { ZoneChange } from '../../src/zone/snapshot.js';
import { seed, slice, svc, testFederationSettings } from '../support/federation.js';

const cl = { name: 'one', region: 'r1', zones: ['z1'], addressMode: 'endpoints' as const, gracePeriod: 300 };

describe('SRV answers cached across an endpoint change', () => {
  it('a cached headless SRV answer gets the new additional addresses after an endpoint moves; no SRV record is listed', () => {
    const fed = new Federation(testFederationSettings());
    const r = new Responder(() => fed.snapshot);
    const changes: ZoneChange[] = [];
    fed.on('published', (_s, ch) => changes.push(ch));
    const c = fed.addCluster(cl);
    seed(c, [svc('h', [], { headless: true }), slice('h', [{ addr: '10.0.0.1', hostname: 'x' }, { addr: '10.0.0.2', hostname: 'y' }])]);
    fed.rebuild();
    const q = () => decodeMessage(r.answer(encodeQuery('_http._tcp.h.ns.fed.example.com.', RRType.SRV, { id: 1 }), 'udp')!);
    const srvBefore = q().answers.map(rrText).sort();
    expect(q().additionals.map((x) => x.data).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    changes.length = 0;
    c.upsert('EndpointSlice', slice('h', [{ addr: '10.0.0.1', hostname: 'x' }, { addr: '10.0.0.3', hostname: 'y' }]));
    c.flush();
    fed.rebuild();
    expect(q().answers.map(rrText).sort()).toEqual(srvBefore);
    expect(q().additionals.map((x) => x.data).sort()).toEqual(['10.0.0.1', '10.0.0.3']);
    const listed = changes.flatMap((ch) => [...ch.removed.map((x) => `-${rrText(x)}`), ...ch.added.map((x) => `+${rrText(x)}`)]);
    expect(listed.filter((t) => t.includes('SRV'))).toEqual([]);
    expect(listed.length).toBeGreaterThan(0);
    // Stale: the same records marked stale make a new node (EDE), TTLs clamped and listed.
    c.markBroken('watch failed');
    c.flush();
    fed.rebuild();
    const m = q();
    expect(m.answers.every((x) => x.ttl <= 5)).toBe(true);
    fed.close();
  });
});
