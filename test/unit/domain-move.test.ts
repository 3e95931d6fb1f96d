// A zone moved to a new domain is served from its first snapshot, even before anything is set in it.
import { describe, expect, it } from 'vitest';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { Responder } from '../../src/server/responder.js';
import { Federation } from '../../src/federation/federation.js';
import { svc, slice, testFederationSettings } from '../support/federation.js';

describe('a reload that moves the zone to a new domain before any cluster has synced', () => {
  it('serves the new domain (its apex), not the old one', () => {
    const settings = testFederationSettings();
    const fed = new Federation(settings);
    const c = fed.addCluster({ name: 'a', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
    // The cluster's initial list is under way: objects seen, not synced.
    c.upsert('Service', svc('web', ['192.0.2.1']));
    c.upsert('EndpointSlice', slice('web', [{ addr: '10.0.0.1' }]));
    fed.rebuild();
    expect(fed.snapshot.ready).toBe(false);
    const responder = new Responder(() => fed.snapshot);
    const ask = (name: string, type: number) => decodeMessage(responder.answer(encodeQuery(name, type), 'udp')!);
    expect(ask('example.com.', RRType.SOA).rcode).toBe(Rcode.NOERROR);
    const domain = 'example.net.';
    fed.reconfigure({
      ...settings,
      apex: { ...settings.apex, domain, soa: { ...settings.apex.soa, mname: `ns1.${domain}`, rname: `hostmaster.${domain}` }, nameservers: [{ name: `ns1.${domain}`, addresses: ['192.0.2.53'] }] },
      naming: { ...settings.naming, domain },
    });
    fed.rebuild();
    expect(fed.snapshot.domain).toBe(domain);
    expect(ask('example.net.', RRType.SOA).rcode).toBe(Rcode.NOERROR);
    expect(ask('example.com.', RRType.SOA).rcode).toBe(Rcode.REFUSED);
    fed.close();
  });
});
