/**
 * Reloads applied in place: a new domain rebuilds the whole zone under the new apex, SOA and NS
 * changes move the serial, cluster settings change without losing the cluster's data, and the
 * load-balancer hostname cache survives new resolver settings.
 */
import { describe, expect, it } from 'vitest';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { Responder } from '../../src/server/responder.js';
import { Federation, type FederationSettings } from '../../src/federation/federation.js';
import { createLogger } from '../../src/ops/log.js';
import { packSlice } from '../../src/cluster/objects.js';
import { seed, testFederationSettings } from '../support/federation.js';

const webSlice = { namespace: 'ns', name: 'web-x', service: 'web', addressType: 'IPv4' as const, ports: [], endpoints: [{ addresses: ['10.0.0.1'], ready: true }] };
const web = [{ namespace: 'ns', name: 'web', headless: false, ports: [], lbAddresses: ['192.0.2.1'], lbHostnames: [], labels: {} }, webSlice];

function withDomain(s: FederationSettings, domain: string): FederationSettings {
  return {
    ...s,
    apex: { ...s.apex, domain, soa: { ...s.apex.soa, mname: `ns1.${domain}`, rname: `hostmaster.${domain}` }, nameservers: [{ name: `ns1.${domain}`, addresses: ['192.0.2.53'] }] },
    naming: { ...s.naming, domain },
  };
}

function setup() {
  const settings = testFederationSettings();
  const fed = new Federation(settings);
  const c = fed.addCluster({ name: 'a', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
  seed(c, web);
  fed.rebuild();
  const responder = new Responder(() => fed.snapshot);
  const ask = (name: string, type: number = RRType.A) => decodeMessage(responder.answer(encodeQuery(name, type), 'udp')!);
  return { fed, c, settings, ask };
}

describe('a reload that changes the domain', () => {
  it('rebuilds every name, the SOA and NS under the new apex; the old apex is out of the zone', () => {
    const { fed, settings, ask } = setup();
    // Warm the responder's caches under the old apex.
    expect(ask('web.ns.fed.example.com.').answers.map((r) => r.data)).toEqual(['192.0.2.1']);
    expect(ask('missing.ns.fed.example.com.').rcode).toBe(Rcode.NXDOMAIN);
    const before = fed.snapshot.serial;
    fed.reconfigure(withDomain(settings, 'example.net.'));
    fed.rebuild();
    const z = fed.snapshot;
    expect(z.domain).toBe('example.net.');
    expect(z.serial).toBeGreaterThan(before);
    const a = ask('web.ns.fed.example.net.');
    expect(a.rcode).toBe(Rcode.NOERROR);
    expect(a.answers.map((r) => `${r.name} ${r.data}`)).toEqual(['web.ns.fed.example.net. 192.0.2.1']);
    expect(ask('web.ns.fed.svc.r1.example.net.').answers.map((r) => r.data)).toEqual(['192.0.2.1']);
    const nx = ask('missing.ns.fed.example.net.');
    expect(nx.rcode).toBe(Rcode.NXDOMAIN);
    expect(nx.authorities.map((r) => `${r.name} ${r.type}`)).toEqual(['example.net. 6']);
    // NODATA: an empty non-terminal and a name without the type, both with the new SOA.
    for (const [name, type] of [['ns.fed.example.net.', RRType.A], ['web.ns.fed.example.net.', RRType.TXT]] as const) {
      const m = ask(name, type);
      expect(m.rcode, name).toBe(Rcode.NOERROR);
      expect(m.answers).toEqual([]);
      expect(m.authorities.map((r) => r.name)).toEqual(['example.net.']);
    }
    const soa = ask('example.net.', RRType.SOA);
    expect(soa.answers[0].data).toMatchObject({ mname: 'ns1.example.net.', serial: z.serial });
    expect(ask('example.net.', RRType.NS).answers.map((r) => r.data)).toEqual(['ns1.example.net.']);
    expect(ask('ns1.example.net.').answers.map((r) => r.data)).toEqual(['192.0.2.53']);
    // The old names are gone: outside the zone now.
    expect(ask('web.ns.fed.example.com.').rcode).toBe(Rcode.REFUSED);
    expect(ask('example.com.', RRType.SOA).rcode).toBe(Rcode.REFUSED);
    for (const node of z.names.values()) expect(node.name.endsWith('example.net.'), node.name).toBe(true);
  });
});

describe('the serial moves with the apex', () => {
  it('a change of SOA fields alone gives a new serial carrying the new fields', () => {
    const { fed, settings, ask } = setup();
    const before = fed.snapshot.serial;
    fed.reconfigure({ ...settings, apex: { ...settings.apex, soa: { ...settings.apex.soa, refresh: 1200, minimum: 60 } } });
    fed.rebuild();
    expect(fed.snapshot.serial).toBeGreaterThan(before);
    expect(ask('example.com.', RRType.SOA).answers[0].data).toMatchObject({ refresh: 1200, minimum: 60, serial: fed.snapshot.serial });
  });

  it('a change of name servers gives a new serial', () => {
    const { fed, settings, ask } = setup();
    const before = fed.snapshot.serial;
    fed.reconfigure({ ...settings, apex: { ...settings.apex, nameservers: [...settings.apex.nameservers, { name: 'ns2.example.org.', addresses: [] }] } });
    fed.rebuild();
    expect(fed.snapshot.serial).toBeGreaterThan(before);
    expect(ask('example.com.', RRType.NS).answers.map((r) => r.data).sort()).toEqual(['ns1.example.com.', 'ns2.example.org.']);
  });

  it('a reload that changes nothing in the zone keeps the serial', () => {
    const { fed, settings } = setup();
    const before = fed.snapshot.serial;
    fed.reconfigure({ ...settings, policy: { ...settings.policy, panicMode: false } });
    fed.rebuild();
    expect(fed.snapshot.serial).toBe(before);
  });
});

describe('cluster settings applied in place', () => {
  it('a new address mode changes the answer at once and keeps the cluster live with its data', () => {
    const { fed, c, ask } = setup();
    c.reconfigure({ ...c.settings, addressMode: 'endpoints' });
    fed.rebuild();
    expect(c.health).toBe('live');
    expect(ask('web.ns.fed.example.com.').answers.map((r) => r.data)).toEqual(['10.0.0.1']);
  });

  it('new zones and region move the service names; dropping configured zones relearns them from the slices', () => {
    const { fed, c, ask } = setup();
    c.reconfigure({ ...c.settings, region: 'r2', zones: ['z2'] });
    fed.rebuild();
    expect(ask('web.ns.fed.svc.z2.r2.example.com.').answers.map((r) => r.data)).toEqual(['192.0.2.1']);
    expect(ask('web.ns.fed.svc.z1.r1.example.com.').rcode).toBe(Rcode.NXDOMAIN);
    c.upsert('EndpointSlice', packSlice({ ...webSlice, endpoints: [{ addresses: ['10.0.0.1'], ready: true, zone: 'z3' }] }));
    c.flush();
    c.reconfigure({ ...c.settings, zones: [] });
    fed.rebuild();
    expect(c.zones).toEqual(['z3']);
    expect(ask('web.ns.fed.svc.z3.r2.example.com.').answers.map((r) => r.data)).toEqual(['192.0.2.1']);
  });

  it('a longer grace period keeps a stale cluster stale; a shorter one expires it', async () => {
    const { fed, c } = setup();
    c.markBroken('test');
    expect(c.health).toBe('stale');
    c.reconfigure({ ...c.settings, gracePeriod: 0.05 });
    await new Promise((r) => setTimeout(r, 150));
    expect(c.health).toBe('expired');
    c.reconfigure({ ...c.settings, gracePeriod: 300 });
    expect(c.health).toBe('stale');
    fed.close();
  });
});

describe('load-balancer hostnames across a reload', () => {
  it('keep their addresses while the new resolvers re-resolve them', async () => {
    const fed = new Federation(testFederationSettings());
    const log = createLogger('silent');
    fed.resolveHostnames(async () => ['192.0.2.77'], 60, log);
    const responder = new Responder(() => fed.snapshot);
    const addrs = () => decodeMessage(responder.answer(encodeQuery('web.ns.fed.example.com.', RRType.A), 'udp')!).answers.map((r) => r.data);
    const c = fed.addCluster({ name: 'a', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
    seed(c, [{ ...web[0], lbAddresses: [], lbHostnames: ['lb.example.net'] }, web[1]]);
    fed.rebuild();
    await fed.settleHostnames();
    expect(addrs()).toEqual(['192.0.2.77']);
    // New resolvers that answer slowly: the old addresses stay until they do, then the new ones.
    let answer!: (a: string[]) => void;
    fed.resolveHostnames(() => new Promise<string[]>((r) => (answer = r)), 60, log);
    fed.reconfigure(testFederationSettings({ defaultTtl: 40 }));
    fed.rebuild();
    expect(addrs()).toEqual(['192.0.2.77']);
    for (let i = 0; i < 50 && !answer; i++) await new Promise((r) => setTimeout(r, 10));
    expect(answer, 'the new resolvers were asked').toBeDefined();
    answer(['192.0.2.88']);
    for (let i = 0; i < 100 && addrs()[0] !== '192.0.2.88'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(addrs()).toEqual(['192.0.2.88']);
    fed.close();
  });
});

describe('load-balancer hostnames: a late answer of the old resolvers', () => {
  it('does not overwrite what the new ones said', async () => {
    const fed = new Federation(testFederationSettings());
    const log = createLogger('silent');
    let lateOld!: (a: string[]) => void;
    fed.resolveHostnames(() => new Promise<string[]>((r) => (lateOld = r)), 60, log);
    const responder = new Responder(() => fed.snapshot);
    const addrs = () => decodeMessage(responder.answer(encodeQuery('web.ns.fed.example.com.', RRType.A), 'udp')!).answers.map((r) => r.data);
    const c = fed.addCluster({ name: 'a', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
    seed(c, [{ ...web[0], lbAddresses: [], lbHostnames: ['lb.example.net'] }, web[1]]);
    fed.rebuild();
    for (let i = 0; i < 50 && !lateOld; i++) await new Promise((r) => setTimeout(r, 10));
    expect(lateOld, 'the old resolvers were asked').toBeDefined();
    fed.resolveHostnames(async () => ['192.0.2.88'], 60, log);
    for (let i = 0; i < 100 && addrs()[0] !== '192.0.2.88'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(addrs()).toEqual(['192.0.2.88']);
    lateOld(['192.0.2.66']);
    await new Promise((r) => setTimeout(r, 50));
    fed.rebuild();
    expect(addrs()).toEqual(['192.0.2.88']);
    fed.close();
  });
});

describe('a new selection policy', () => {
  it('brings back services the old one left out', () => {
    const settings = testFederationSettings({ selection: 'exported' });
    const fed = new Federation(settings);
    const c = fed.addCluster({ name: 'a', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
    seed(c, web);
    fed.rebuild();
    const responder = new Responder(() => fed.snapshot);
    const ask = () => decodeMessage(responder.answer(encodeQuery('web.ns.fed.example.com.', RRType.A), 'udp')!);
    expect(ask().rcode).toBe(Rcode.NXDOMAIN);
    fed.reconfigure(testFederationSettings({ selection: 'all' }));
    fed.rebuild();
    expect(ask().answers.map((r) => r.data)).toEqual(['192.0.2.1']);
  });
});
