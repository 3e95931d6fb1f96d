// Review checks of 71a0790, 7638f9e, 3ce37ab.
import { describe, expect, it } from 'vitest';
import { Federation } from '../../src/federation/federation.js';
import { Responder } from '../../src/server/responder.js';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { rrText } from '../../src/wire/records.js';
import type { ZoneChange } from '../../src/zone/snapshot.js';
import { seed, slice, svc, testFederationSettings } from '../support/federation.js';

const cl = { name: 'one', region: 'r1', zones: ['z1'], addressMode: 'endpoints' as const, gracePeriod: 300 };

describe('review', () => {
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

  it('a federation closed with a slice asked, then changed again, is rebuilt when that slice comes', async () => {
    const fed = new Federation(testFederationSettings());
    const r = new Responder(() => fed.snapshot);
    const c = fed.addCluster({ ...cl, addressMode: 'loadBalancer' });
    seed(c, [svc('w', ['192.0.2.1']), slice('w', [{ addr: '10.0.0.1' }])]);
    fed.rebuild();
    c.upsert('Service', svc('w', ['192.0.2.2']));
    c.flush();
    fed.rebuild();
    fed.close();
    c.upsert('Service', svc('w', ['192.0.2.3']));
    c.flush();
    await new Promise((res) => setTimeout(res, 50));
    const a = decodeMessage(r.answer(encodeQuery('w.ns.fed.example.com.', RRType.A, { id: 1 }), 'udp')!).answers.map((x) => x.data);
    expect(a).toEqual(['192.0.2.3']);
  });
});
