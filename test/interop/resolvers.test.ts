/**
 * fedns behind the resolvers that real clients use:
 *  - unbound as a validating-style recursive resolver with a stub zone for example.com and
 *    QNAME minimisation on (RFC 9156): it walks down label by label, so an NXDOMAIN on an
 *    empty non-terminal would hide every name below it (RFC 8020);
 *  - dnsmasq as kube-dns's stub-domain forwarder, the path a pod in a member cluster takes.
 * Through both, answers must be fedns's answers (same data, TTLs aside), NXDOMAIN must stay
 * NXDOMAIN and empty non-terminals must be NODATA.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, rrKey, summarise, type DigResult } from '../support/dig.js';
import { startFedns, withYaml, type FednsProcess } from '../support/fedns.js';
import { requirePeers, startDnsmasq, startUnbound, type PeerHandle } from '../support/peers.js';

const hasUnbound = requirePeers('unbound', 'dig');
const hasDnsmasq = requirePeers('dnsmasq', 'dig');

const GLOBAL_NGINX = ['192.0.2.10', '198.51.100.10'];
/** A name under two empty non-terminals (alpha.db.data.fed.svc.example.com is the reserved MCS shape). */
const DEEP = 'db-0.alpha.db.data.fed.svc.example.com';
/** The same endpoint's shape in the clusterset zone, under the cluster ID from charlie's ClusterProperty. */
const CS_DEEP = 'db-0.charlie-eu.db.data.svc.clusterset.local';

function ask(port: number, name: string, type: string, ...opts: string[]): Promise<DigResult> {
  return dig(['@127.0.0.1', '-p', String(port), '+time=5', ...opts, name, type]);
}

const answerKeys = (r: DigResult) => r.answer.map((x) => rrKey(x, { ignoreTtl: true })).sort();
const addresses = (r: DigResult) =>
  r.answer
    .filter((x) => x.type === 'A' || x.type === 'AAAA')
    .map((x) => x.data)
    .sort();

/** Shared checks for a resolver in front of fedns; `port()` is the resolver's port. */
function resolverSuite(label: string, resolverPort: () => number, fednsPort: () => number): void {
  it(`${label}: global name -> both healthy clusters' addresses`, async () => {
    for (const name of ['nginx.default.fed.example.com', 'nginx.default.fed.svc.example.com']) {
      const r = await ask(resolverPort(), name, 'A');
      expect(r.status, summarise(r)).toBe('NOERROR');
      expect(r.flags.has('ra')).toBe(true); // it came from the resolver, not fedns directly
      expect(addresses(r)).toEqual(GLOBAL_NGINX);
    }
  });

  it(`${label}: regional and zonal CNAME fallbacks resolve through the chain`, async () => {
    // charlie's nginx has no ready endpoint: eu-west -> global.
    const regional = await ask(resolverPort(), 'nginx.default.fed.svc.eu-west.example.com', 'A');
    expect(regional.status, summarise(regional)).toBe('NOERROR');
    expect(regional.answer.some((x) => x.type === 'CNAME' && x.data === 'nginx.default.fed.svc.example.com.')).toBe(true);
    expect(addresses(regional)).toEqual(GLOBAL_NGINX);
    // billing only in us-east-b: eu-west-a -> eu-west -> global.
    const zonal = await ask(resolverPort(), 'billing.finance.fed.svc.eu-west-a.eu-west.example.com', 'A');
    expect(zonal.status, summarise(zonal)).toBe('NOERROR');
    expect(zonal.answer.filter((x) => x.type === 'CNAME')).toHaveLength(2);
    expect(addresses(zonal)).toEqual(['198.51.100.30']);
  });

  it(`${label}: empty non-terminals are NODATA, and names below them still resolve`, async () => {
    for (const ent of ['alpha.db.data.fed.svc.example.com', 'data.fed.svc.example.com', 'svc.example.com', 'eu-west.example.com', 'default.fed.example.com']) {
      const r = await ask(resolverPort(), ent, 'A');
      expect(r.status, `${ent}: ${summarise(r)}`).toBe('NOERROR');
      expect(r.answer, ent).toEqual([]);
    }
    // Asked after its ancestors were cached as NODATA: must not be synthesised away.
    const deep = await ask(resolverPort(), DEEP, 'A');
    expect(deep.status, summarise(deep)).toBe('NOERROR');
    expect(addresses(deep)).toEqual(['192.0.2.101']);
  });

  it(`${label}: NXDOMAIN stays NXDOMAIN (and its negative answer carries the SOA)`, async () => {
    for (const name of ['nosuch.default.fed.example.com', 'nginx.nosuch.fed.svc.example.com', 'x.db-0.alpha.db.data.fed.svc.example.com']) {
      const r = await ask(resolverPort(), name, 'A');
      expect(r.status, `${name}: ${summarise(r)}`).toBe('NXDOMAIN');
      expect(r.answer).toEqual([]);
      expect(r.authority.map((x) => `${x.name} ${x.type}`)).toEqual(['example.com. SOA']);
    }
  });

  it(`${label}: NODATA types at existing names`, async () => {
    const r = await ask(resolverPort(), 'nginx.default.fed.example.com', 'AAAA');
    expect(r.status, summarise(r)).toBe('NOERROR');
    expect(r.answer).toEqual([]);
    expect(r.authority.map((x) => x.type)).toEqual(['SOA']);
  });

  it(`${label}: same data as fedns answers directly`, async () => {
    const names: [string, string][] = [
      ['web.shop.fed.example.com', 'AAAA'],
      ['web.shop.fed.svc.us-east-a.us-east.example.com', 'A'],
      ['_https._tcp.web.shop.fed.svc.example.com', 'SRV'],
      ['_postgres._tcp.db.data.fed.svc.example.com', 'SRV'],
      ['db.data.fed.svc.us-east-b.us-east.example.com', 'A'],
      ['203-0-113-102.charlie.db.data.fed.svc.example.com', 'A'],
    ];
    for (const [name, type] of names) {
      const direct = await ask(fednsPort(), name, type, '+norec');
      const via = await ask(resolverPort(), name, type);
      expect(via.status, `${name} ${type}: ${summarise(via)}`).toBe(direct.status);
      expect(answerKeys(via), `${name} ${type}`).toEqual(answerKeys(direct));
    }
  });
}

describe.skipIf(!hasUnbound)('unbound (stub zone, QNAME minimisation) in front of fedns', () => {
  let f: FednsProcess;
  let unbound: PeerHandle;
  beforeAll(async () => {
    // Query log on: proves below that unbound really minimised its queries.
    f = await startFedns({ edit: withYaml('log: { queries: true }') });
    unbound = await startUnbound({ upstreamPort: f.port, domain: 'example.com', moreDomains: ['clusterset.local'] });
  });
  afterAll(async () => {
    await Promise.all([unbound?.stop(), f?.stop()]);
  });

  it('a deep name under empty non-terminals resolves with minimised queries', async () => {
    const r = await ask(unbound.port, DEEP, 'A');
    expect(r.status, `${summarise(r)}\n--- unbound ---\n${unbound.output()}`).toBe('NOERROR');
    expect(addresses(r)).toEqual(['192.0.2.101']);
    // fedns saw ancestors of the name (QNAME minimisation), all answered without NXDOMAIN.
    const seen = f
      .logs()
      .filter((l) => l.msg === 'query' && typeof l.qname === 'string')
      .map((l) => ({ qname: String(l.qname).toLowerCase(), rcode: String(l.rcode) }));
    const ancestors = seen.filter((s) => `${DEEP}.`.endsWith(`.${s.qname}`) && s.qname !== 'example.com.');
    expect(ancestors.length, JSON.stringify(seen)).toBeGreaterThan(0);
    expect(ancestors.filter((s) => s.rcode === 'NXDOMAIN')).toEqual([]);
    expect(seen.some((s) => s.qname === `${DEEP}.`)).toBe(true);
  });

  it('both zones resolve through one resolver: the clusterset zone (mcs) with minimised queries too', async () => {
    // Interleaved, so each zone's answers and negative answers are cached side by side.
    const queries: [string, string, string[]][] = [
      [CS_DEEP, 'A', ['203.0.113.101']],
      [DEEP, 'A', ['192.0.2.101']],
      ['web.shop.svc.clusterset.local', 'A', ['10.42.0.20']],
      ['nginx.default.fed.example.com', 'A', GLOBAL_NGINX],
      ['db.data.svc.clusterset.local', 'A', ['192.0.2.101', '192.0.2.102', '203.0.113.101', '203.0.113.102']],
    ];
    for (const [name, type, want] of queries) {
      const r = await ask(unbound.port, name, type);
      expect(r.status, `${name}: ${summarise(r)}\n--- unbound ---\n${unbound.output()}`).toBe('NOERROR');
      expect(addresses(r), name).toEqual(want);
    }
    const txt = await ask(unbound.port, 'dns-version.clusterset.local', 'TXT');
    expect(txt.answer.map((x) => x.data)).toEqual(['"1.0.0"']);
    // The reserved <clusterid>.<svc> shape is NODATA (an ancestor of endpoint names), not NXDOMAIN.
    const reserved = await ask(unbound.port, 'charlie-eu.db.data.svc.clusterset.local', 'A');
    expect(reserved.status).toBe('NOERROR');
    expect(reserved.answer).toEqual([]);
    for (const name of ['billing.finance.svc.clusterset.local', 'alpha.web.shop.svc.clusterset.local']) {
      const r = await ask(unbound.port, name, 'A');
      expect(r.status, name).toBe('NXDOMAIN');
    }
    const seen = f
      .logs()
      .filter((l) => l.msg === 'query' && typeof l.qname === 'string')
      .map((l) => ({ qname: String(l.qname).toLowerCase(), rcode: String(l.rcode) }));
    const ancestors = seen.filter((s) => `${CS_DEEP}.`.endsWith(`.${s.qname}`) && s.qname !== 'clusterset.local.');
    expect(ancestors.length, JSON.stringify(seen)).toBeGreaterThan(0);
    expect(ancestors.filter((s) => s.rcode === 'NXDOMAIN')).toEqual([]);
  });

  resolverSuite('unbound', () => unbound.port, () => f.port);
});

describe.skipIf(!hasDnsmasq)('dnsmasq as the kube-dns stub-domain forwarder', () => {
  let f: FednsProcess;
  let dnsmasq: PeerHandle;
  beforeAll(async () => {
    f = await startFedns();
    dnsmasq = await startDnsmasq({ upstreamPort: f.port, domain: 'example.com' });
  });
  afterAll(async () => {
    await Promise.all([dnsmasq?.stop(), f?.stop()]);
  });

  it('names outside the stub domain are not forwarded to fedns', async () => {
    const r = await ask(dnsmasq.port, 'nginx.default.fed.example.org', 'A');
    expect(r.status).toBe('REFUSED');
  });

  resolverSuite('dnsmasq', () => dnsmasq.port, () => f.port);
});
