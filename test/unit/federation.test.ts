import { describe, expect, it } from 'vitest';
import type { ClusterSettings } from '../../src/cluster/state.js';
import { EdnsOption, Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery, type Message } from '../../src/wire/message.js';
import { Responder } from '../../src/server/responder.js';
import { Federation } from '../../src/federation/federation.js';
import type { FederationPolicy } from '../../src/federation/model.js';
import { parseLabelSelector } from '../../src/federation/selector.js';
import { zoneRecords } from '../../src/zone/masterfile.js';
import { nameKey } from '../../src/wire/name.js';
import { AddressNode } from '../../src/zone/node.js';
import { explain } from '../../src/ops/explain.js';
import { ZoneBuilder, type ZoneChange, type ZoneSnapshot } from '../../src/zone/snapshot.js';
import { rrText } from '../../src/wire/records.js';
import { seed, slice, svc, testFederationSettings } from '../support/federation.js';
import { waitingSlices } from '../../src/slices.js';
import { serviceNames } from '../../src/federation/service-records.js';
import { captureLogs } from '../transfer/harness.js';

function federation(policy: Partial<FederationPolicy> = {}): { fed: Federation; ask: (n: string, t: number, o?: Parameters<typeof encodeQuery>[2], tr?: 'udp' | 'tcp') => Message } {
  const fed = new Federation(testFederationSettings(policy));
  const responder = new Responder(() => fed.snapshot);
  const ask = (n: string, t: number, o: Parameters<typeof encodeQuery>[2] = {}, tr: 'udp' | 'tcp' = 'udp') =>
    decodeMessage(responder.answer(encodeQuery(n, t, o), tr)!);
  return { fed, ask };
}

const settings = (name: string, over: Partial<ClusterSettings> = {}): ClusterSettings => ({
  name,
  region: 'r1',
  zones: ['z1'],
  addressMode: 'loadBalancer',
  gracePeriod: 300,
  ...over,
});

/** Asks NAME (A) at every publish and hands the answer to `each`, until it has records; resolves to the publishes seen. */
function publishesUntilAnswered(fed: Federation, ask: (n: string, t: number) => Message, name: string, each: (m: Message) => void): Promise<number> {
  let publishes = 0;
  return new Promise((resolve) => {
    fed.on('published', () => {
      publishes++;
      const m = ask(name, RRType.A);
      each(m);
      if (m.answers.length) resolve(publishes);
    });
  });
}

const addrs = (m: Message) => m.answers.filter((r) => r.type === RRType.A || r.type === RRType.AAAA).map((r) => r.data as string).sort();

describe('federation changes', () => {
  it('answers SERVFAIL for cluster names until a cluster has synced, apex meanwhile', () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('one'));
    fed.rebuild();
    expect(ask('a.ns.fed.example.com.', RRType.A).rcode).toBe(Rcode.SERVFAIL);
    expect(ask('example.com.', RRType.SOA).rcode).toBe(Rcode.NOERROR);
    seed(c, [svc('a', ['192.0.2.1']), slice('a', [{ addr: '10.0.0.1' }])]);
    fed.rebuild();
    expect(addrs(ask('a.ns.fed.example.com.', RRType.A))).toEqual(['192.0.2.1']);
    expect(ask('b.ns.fed.example.com.', RRType.A).rcode).toBe(Rcode.NXDOMAIN);
  });

  it('follows endpoint readiness, keeps old snapshots intact, and moves the serial', () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('one'));
    seed(c, [svc('a', ['192.0.2.1']), slice('a', [{ addr: '10.0.0.1' }])]);
    const before = fed.rebuild();
    expect(addrs(ask('a.ns.fed.svc.example.com.', RRType.A))).toEqual(['192.0.2.1']);
    c.upsert('EndpointSlice', slice('a', [{ addr: '10.0.0.1', ready: false }]));
    c.flush();
    const after = fed.rebuild();
    expect(after.serial).toBeGreaterThan(before.serial);
    // No ready endpoint: the load balancer is not served; the name stays (NODATA).
    const m = ask('a.ns.fed.svc.example.com.', RRType.A);
    expect(m.rcode).toBe(Rcode.NOERROR);
    expect(m.answers).toEqual([]);
    // The old snapshot still holds the old answer.
    const key = nameKey('a.ns.fed.svc.example.com.');
    expect(before.names.get(key)?.records().map((r) => r.data)).toEqual(['192.0.2.1']);
    expect(after.names.get(key)?.records()).toEqual([]);
    // Nothing changed: no new serial.
    c.upsert('EndpointSlice', slice('a', [{ addr: '10.0.0.1', ready: false }]));
    c.flush();
    expect(fed.rebuild().serial).toBe(after.serial);
  });

  it('removes a deleted service with its empty non-terminals', () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('one'));
    seed(c, [svc('a', ['192.0.2.1']), slice('a', [{ addr: '10.0.0.1' }])]);
    fed.rebuild();
    expect(ask('ns.fed.svc.example.com.', RRType.A).rcode).toBe(Rcode.NOERROR);
    expect(ask('_tcp.a.ns.fed.example.com.', RRType.A).rcode).toBe(Rcode.NOERROR);
    c.remove('Service', 'ns', 'a');
    c.flush();
    fed.rebuild();
    expect(ask('a.ns.fed.svc.example.com.', RRType.A).rcode).toBe(Rcode.NXDOMAIN);
    expect(ask('ns.fed.svc.example.com.', RRType.A).rcode).toBe(Rcode.NXDOMAIN);
    expect(ask('_tcp.a.ns.fed.example.com.', RRType.A).rcode).toBe(Rcode.NXDOMAIN);
    expect(ask('r1.example.com.', RRType.A).rcode).toBe(Rcode.NXDOMAIN);
    // Only apex data is left.
    expect(zoneRecords(fed.snapshot).map((r) => r.name)).toEqual(['example.com.', 'example.com.', 'ns1.example.com.']);
  });

  it('truncates over UDP with the OPT kept, and answers in full over TCP', () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('one'));
    const many = Array.from({ length: 60 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`);
    seed(c, [svc('big', many), slice('big', [{ addr: '10.0.0.1' }])]);
    fed.rebuild();
    const plain = ask('big.ns.fed.example.com.', RRType.AAAA);
    expect(plain.tc).toBe(true);
    expect(plain.answers).toEqual([]);
    expect(plain.edns).toBeUndefined();
    const edns = ask('big.ns.fed.example.com.', RRType.AAAA, { edns: { udpSize: 4096 } });
    expect(edns.tc).toBe(true);
    expect(edns.edns?.udpSize).toBe(1232);
    const tcp = ask('big.ns.fed.example.com.', RRType.AAAA, {}, 'tcp');
    expect(tcp.tc).toBe(false);
    expect(addrs(tcp)).toEqual([...many].sort());
  });

  it('serves stale data with a short TTL and EDE 3, then expires it unless panic mode keeps it', async () => {
    for (const panicMode of [true, false]) {
      const { fed, ask } = federation({ panicMode });
      const c = fed.addCluster(settings('one', { gracePeriod: 0.05 }));
      seed(c, [svc('a', ['192.0.2.1']), slice('a', [{ addr: '10.0.0.1' }])]);
      fed.rebuild();
      expect(ask('a.ns.fed.example.com.', RRType.A).answers[0].ttl).toBe(30);
      c.markBroken('watch failed');
      fed.rebuild();
      expect(c.health).toBe('stale');
      const stale = ask('a.ns.fed.example.com.', RRType.A, { edns: {} });
      expect(addrs(stale)).toEqual(['192.0.2.1']);
      expect(stale.answers[0].ttl).toBe(5);
      expect(stale.edns?.options).toEqual([{ code: EdnsOption.EDE, data: Buffer.from([0, 3]) }]);
      await new Promise((r) => setTimeout(r, 120));
      expect(c.health).toBe('expired');
      fed.rebuild();
      const late = ask('a.ns.fed.example.com.', RRType.A);
      if (panicMode) expect(addrs(late)).toEqual(['192.0.2.1']);
      else expect(late.rcode).toBe(Rcode.NXDOMAIN);
      c.markLive();
      fed.rebuild();
      expect(ask('a.ns.fed.example.com.', RRType.A).answers[0].ttl).toBe(30);
      fed.close();
    }
  });

  it('panic mode keeps an expired cluster\'s addresses only while no live or stale cluster holds the service', async () => {
    const { fed, ask } = federation({ panicMode: true });
    const a = fed.addCluster(settings('a', { gracePeriod: 0.05, addressMode: 'endpoints' }));
    const b = fed.addCluster(settings('b', { addressMode: 'endpoints' }));
    seed(a, [svc('web', []), slice('web', [{ addr: '10.0.0.1' }])]);
    // b runs web scaled to zero: a live word that it has no ready endpoint.
    seed(b, [svc('web', []), slice('web', [{ addr: '10.0.0.2', ready: false }])]);
    fed.rebuild();
    a.markBroken('watch failed');
    await new Promise((r) => setTimeout(r, 120));
    expect(a.health).toBe('expired');
    fed.rebuild();
    expect(fed.federated('ns/web')!.panic).toBe(false);
    const m = ask('web.ns.fed.example.com.', RRType.A);
    expect([m.rcode, m.answers.length]).toEqual([Rcode.NOERROR, 0]);
    // b deletes web: every cluster holding it has expired, and panic mode keeps a's last addresses.
    b.remove('Service', 'ns', 'web');
    b.flush();
    fed.rebuild();
    expect(fed.federated('ns/web')!.panic).toBe(true);
    expect(addrs(ask('web.ns.fed.example.com.', RRType.A))).toEqual(['10.0.0.1']);
    fed.close();
  });

  it('a stale cluster whose copy has no ready endpoint makes the answers stale too (its view may be out of date)', () => {
    const { fed, ask } = federation();
    const east = fed.addCluster(settings('east', { region: 'east' }));
    const west = fed.addCluster(settings('west', { region: 'west' }));
    seed(east, [svc('a', ['192.0.2.1']), slice('a', [{ addr: '10.0.0.1' }])]);
    seed(west, [svc('a', ['192.0.2.2']), slice('a', [{ addr: '10.0.1.1', ready: false }])]);
    fed.rebuild();
    const fresh = ask('a.ns.fed.svc.west.example.com.', RRType.A, { edns: {} });
    expect(fresh.answers[0].type).toBe(RRType.CNAME);
    expect(fresh.answers[0].ttl).toBe(30);
    west.markBroken('watch failed');
    fed.rebuild();
    // The west region falls back to the global name only on west's word, which is stale now.
    for (const name of ['a.ns.fed.svc.west.example.com.', 'a.ns.fed.example.com.']) {
      const m = ask(name, RRType.A, { edns: {} });
      expect(m.answers.length, name).toBeGreaterThan(0);
      expect(m.answers.every((r) => r.ttl === 5), name).toBe(true);
      expect(m.edns?.options, name).toEqual([{ code: EdnsOption.EDE, data: Buffer.from([0, 3]) }]);
    }
    west.markLive();
    fed.rebuild();
    expect(ask('a.ns.fed.example.com.', RRType.A).answers[0].ttl).toBe(30);
    fed.close();
  });

  it('does not let an expired cluster contribute while a live one serves the service', async () => {
    const { fed, ask } = federation();
    const a = fed.addCluster(settings('a', { gracePeriod: 0.01 }));
    const b = fed.addCluster(settings('b'));
    for (const [c, ip] of [[a, '192.0.2.1'], [b, '192.0.2.2']] as const) {
      seed(c, [svc('s', [ip]), slice('s', [{ addr: '10.0.0.1' }])]);
    }
    fed.rebuild();
    expect(addrs(ask('s.ns.fed.example.com.', RRType.A))).toEqual(['192.0.2.1', '192.0.2.2']);
    a.markBroken('unreachable');
    await new Promise((r) => setTimeout(r, 50));
    fed.rebuild();
    expect(addrs(ask('s.ns.fed.example.com.', RRType.A))).toEqual(['192.0.2.2']);
    fed.close();
  });

  it('selects by ServiceExport and by label selector', () => {
    for (const [policy, want] of [
      [{ selection: 'exported' as const }, ['192.0.2.2']],
      [{ selection: 'labels' as const, selector: parseLabelSelector('fed=yes') }, ['192.0.2.1']],
    ] as const) {
      const { fed, ask } = federation(policy);
      const a = fed.addCluster(settings('a'));
      a.upsert('Service', svc('s', ['192.0.2.1'], { labels: { fed: 'yes' } }));
      a.upsert('EndpointSlice', slice('s', [{ addr: '10.0.0.1' }]));
      const b = fed.addCluster(settings('b'));
      b.upsert('Service', svc('s', ['192.0.2.2']));
      b.upsert('EndpointSlice', slice('s', [{ addr: '10.0.0.2' }]));
      b.upsert('ServiceExport', { namespace: 'ns', name: 's' });
      for (const c of [a, b]) {
        c.markLive();
        c.flush();
      }
      fed.rebuild();
      expect(addrs(ask('s.ns.fed.example.com.', RRType.A))).toEqual(want);
    }
  });

  it('uses ready endpoint addresses in endpoints mode, per zone', () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('a', { addressMode: 'endpoints', zones: ['z1', 'z2'] }));
    seed(c, [svc('s', ['192.0.2.1']), slice('s', [{ addr: '10.0.0.1', zone: 'z1' }, { addr: '10.0.0.2', zone: 'z2' }, { addr: '10.0.0.3', ready: false, zone: 'z2' }])]);
    fed.rebuild();
    expect(addrs(ask('s.ns.fed.example.com.', RRType.A))).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(addrs(ask('s.ns.fed.svc.z2.r1.example.com.', RRType.A))).toEqual(['10.0.0.2']);
    expect(addrs(ask('s.ns.fed.svc.r1.example.com.', RRType.A))).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('updates the chased answer of a fallback CNAME when the target changes', () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('a', { zones: ['z1', 'z2'] }));
    seed(c, [svc('s', ['192.0.2.1']), slice('s', [{ addr: '10.0.0.1', zone: 'z1' }])]);
    fed.rebuild();
    expect(addrs(ask('s.ns.fed.svc.z2.r1.example.com.', RRType.A))).toEqual(['192.0.2.1']);
    c.upsert('Service', svc('s', ['192.0.2.9']));
    c.flush();
    fed.rebuild();
    const m = ask('s.ns.fed.svc.z2.r1.example.com.', RRType.A);
    expect(m.answers[0].type).toBe(RRType.CNAME);
    expect(addrs(m)).toEqual(['192.0.2.9']);
  });

  it('gives every service names for a region that appears later', () => {
    const { fed, ask } = federation();
    const a = fed.addCluster(settings('a'));
    seed(a, [svc('s', ['192.0.2.1']), slice('s', [{ addr: '10.0.0.1' }])]);
    fed.rebuild();
    expect(ask('s.ns.fed.svc.r2.example.com.', RRType.A).rcode).toBe(Rcode.NXDOMAIN);
    const b = fed.addCluster(settings('b', { region: 'r2', zones: ['z9'] }));
    seed(b);
    fed.rebuild();
    const m = ask('s.ns.fed.svc.z9.r2.example.com.', RRType.A);
    expect(m.answers.map((r) => r.type)).toEqual([RRType.CNAME, RRType.CNAME, RRType.A]);
  });
});

/** Services s0 to s(n-1), each with its own load-balancer address and one ready endpoint. */
const manyServices = (n: number) =>
  Array.from({ length: n }, (_, i) => [svc(`s${i}`, [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`]), slice(`s${i}`, [{ addr: '10.255.0.1' }])]).flat();

describe('rebuilding many services', () => {
  it('goes a slice at a time, and a change from a watch event goes ahead of a reload rebuilding every service', async () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('one'));
    const N = 10_000;
    seed(c, manyServices(N));
    fed.rebuild();
    const ttl = (i: number) => ask(`s${i}.ns.fed.example.com.`, RRType.A).answers[0]?.ttl;
    expect(ttl(N - 1)).toBe(30);
    // A reload: every service dirty, rebuilt in slices from the next turn on...
    fed.reconfigure(testFederationSettings({ defaultTtl: 31 }));
    // ... and meanwhile one service (the last of the bulk order) changes in its cluster.
    c.upsert('Service', svc(`s${N - 1}`, ['192.0.2.99']));
    c.flush();
    const published: number[] = [];
    fed.on('published', (_snap, _change, services) => published.push(services));
    await new Promise<void>((resolve) => fed.once('published', () => resolve()));
    // The first slice answers the change (with the new TTL too) while most services wait.
    expect(addrs(ask(`s${N - 1}.ns.fed.example.com.`, RRType.A))).toEqual(['192.0.2.99']);
    expect(ttl(N - 1)).toBe(31);
    expect(ttl(N - 2)).toBe(30);
    expect(published[0]).toBeLessThan(N);
    // The rest follows, slice after slice, until every service has the new TTL.
    await new Promise<void>((resolve) => {
      const done = () => (ttl(N - 2) === 31 && ttl(0) === 31 ? resolve() : setTimeout(done, 10));
      done();
    });
    expect(published.length).toBeGreaterThan(1);
    expect(published.reduce((a, b) => a + b, 0)).toBe(N);
    fed.close();
  }, 60_000);

  it('changes rebuilt at once, many before the event loop turns, leave one slice waiting, not one each; the next change still waits for it', async () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('one'));
    seed(c, [svc('web', ['192.0.2.1']), slice('web', [{ addr: '10.0.0.1' }])]);
    fed.rebuild();
    expect(addrs(ask('web.ns.fed.example.com.', RRType.A))).toEqual(['192.0.2.1']);
    const before = waitingSlices();
    // Each change asks for a slice; each rebuild() does the work at once.
    for (let i = 0; i < 1000; i++) {
      c.upsert('Service', svc('web', [`192.0.2.${(i % 200) + 1}`]));
      c.flush();
      fed.rebuild();
    }
    // One slice asked for, kept until its turn: the changes held one each (a promise and a closure).
    expect(waitingSlices() - before).toBeLessThanOrEqual(1);
    // A change the caller does not rebuild is rebuilt in that slice.
    c.upsert('Service', svc('web', ['192.0.2.250']));
    c.flush();
    await new Promise<void>((resolve) => fed.once('published', () => resolve()));
    expect(addrs(ask('web.ns.fed.example.com.', RRType.A))).toEqual(['192.0.2.250']);
    fed.close();
  });

  it('an initial sync rebuilt in slices makes the zone ready only once every service of it answers: no NXDOMAIN for a name not built yet', async () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('one'));
    const N = 10_000;
    // seed() flushes to the federation, which rebuilds a slice per turn (no rebuild() here).
    seed(c, manyServices(N));
    const rcodes = new Set<number>();
    const slices = await publishesUntilAnswered(fed, ask, `s${N - 1}.ns.fed.example.com.`, (m) => {
      // Whenever the zone says it is ready, the last service must answer.
      if (fed.snapshot.ready) rcodes.add(m.rcode);
      else expect(m.rcode).toBe(Rcode.SERVFAIL);
    });
    expect(slices).toBeGreaterThan(1);
    expect([...rcodes]).toEqual([Rcode.NOERROR]);
    fed.close();
  }, 60_000);

  it('a cluster still syncing rebuilds nothing: its objects count from the moment it is live', () => {
    const { fed, ask } = federation();
    const a = fed.addCluster(settings('a', { addressMode: 'endpoints' }));
    seed(a, [svc('s', []), slice('s', [{ addr: '10.0.0.1' }])]);
    fed.rebuild();
    const rebuilt: number[] = [];
    fed.on('published', (_snap, _change, services) => rebuilt.push(services));
    // The second cluster's first lists arrive: it contributes nothing yet.
    const b = fed.addCluster(settings('b', { addressMode: 'endpoints' }));
    for (const name of ['s', ...Array.from({ length: 50 }, (_, i) => `t${i}`)]) {
      b.upsert('Service', svc(name, []));
      b.upsert('EndpointSlice', slice(name, [{ addr: '10.0.1.1' }]));
    }
    b.flush();
    // A change in the live cluster publishes: only its service was rebuilt.
    a.upsert('EndpointSlice', slice('s', [{ addr: '10.0.0.2' }]));
    a.flush();
    fed.rebuild();
    expect(rebuilt).toEqual([1]);
    expect(addrs(ask('s.ns.fed.example.com.', RRType.A))).toEqual(['10.0.0.2']);
    expect(ask('t0.ns.fed.example.com.', RRType.A).rcode).toBe(Rcode.NXDOMAIN);
    // Live: every service of the cluster is built with its data.
    b.markLive();
    b.flush();
    fed.rebuild();
    expect(addrs(ask('s.ns.fed.example.com.', RRType.A))).toEqual(['10.0.0.2', '10.0.1.1']);
    expect(addrs(ask('t49.ns.fed.example.com.', RRType.A))).toEqual(['10.0.1.1']);
  });

  it('a small cluster flapping during a reload rebuilds its own service again, and the others once', () => {
    const { fed } = federation();
    const N = 400;
    // The same N services in four clusters, as a federated service is written in each.
    const clusters = ['a', 'b', 'c', 'd'].map((name) => fed.addCluster(settings(name, { addressMode: 'endpoints' })));
    for (const [k, c] of clusters.entries())
      seed(c, Array.from({ length: N }, (_, i) => [svc(`s${i}`, []), slice(`s${i}`, [{ addr: `10.${k}.${i >> 8}.${i & 255}` }])]).flat());
    const tiny = fed.addCluster(settings('tiny', { addressMode: 'endpoints' }));
    seed(tiny, [svc('tiny', []), slice('tiny', [{ addr: '10.9.0.1' }])]);
    fed.rebuild();
    // Rebuilds counted as they run: one that changes nothing (the small cluster back as it was)
    // publishes nothing.
    let rebuilt = 0;
    const inner = fed as unknown as { rebuildService(...args: unknown[]): boolean };
    const rebuildService = inner.rebuildService.bind(fed);
    inner.rebuildService = (...args) => (rebuilt++, rebuildService(...args));
    // A reload (a new TTL) marks the services present and every cluster's: rebuilt 50 at a time.
    fed.reconfigure(testFederationSettings({ defaultTtl: 31 }));
    const rebuildFor = (fed as unknown as { rebuildFor(spent: () => boolean): void }).rebuildFor.bind(fed);
    for (let slices = 0; slices < 100; slices++) {
      let left = 50;
      rebuildFor(() => --left <= 0);
      // Between slices the small cluster's API server hiccups: stale, then live again.
      tiny.markBroken('connection reset');
      tiny.markLive();
    }
    rebuildFor(() => false);
    // Each of the N + 1 services once, and the small cluster's own again at most once per hiccup
    // (hiccups while its mark waits make one): a hiccup's mark is not the big clusters', which
    // each redid what was rebuilt before it when any mark counted for all (2,062 in all).
    expect(rebuilt).toBeGreaterThan(N + 1);
    expect(rebuilt).toBeLessThanOrEqual(N + 1 + 100);
    fed.close();
  });

  it('a zone label flapping a thousand times before the rebuild runs: each service rebuilt once, with the last topology', () => {
    const { fed, ask } = federation();
    // Zones learned from the slices: each new label is a new topology, which every service's names follow.
    const c = fed.addCluster(settings('one', { zones: [], addressMode: 'endpoints' }));
    const N = 300;
    seed(c, [
      ...Array.from({ length: N }, (_, i) => [svc(`s${i}`, []), slice(`s${i}`, [{ addr: `10.0.${i >> 8}.${i & 255}`, zone: 'za' }])]).flat(),
      svc('tenant', []),
    ]);
    fed.rebuild();
    const rebuilt: number[] = [];
    fed.on('published', (_snap, _change, services) => rebuilt.push(services));
    // A tenant's slice moves to a new zone label 1,000 times, faster than any rebuild runs: the
    // marks of the services present and of the cluster are taken as one each.
    for (let i = 0; i < 1000; i++) {
      c.upsert('EndpointSlice', slice('tenant', [{ addr: '10.9.0.1', zone: `zf${i}` }]));
      c.flush();
    }
    fed.rebuild();
    // Every service once (the tenant's service too): the marks did not pile up.
    expect(rebuilt.reduce((a, b) => a + b, 0)).toBe(N + 1);
    // Each service was rebuilt with the last topology: a name in the last zone, none in the one before.
    const last = ask('s7.ns.fed.svc.zf999.r1.example.com.', RRType.A);
    expect(last.answers.filter((r) => r.type === RRType.CNAME).map((r) => r.data)).toEqual(['s7.ns.fed.svc.r1.example.com.']);
    expect(ask('s7.ns.fed.svc.zf998.r1.example.com.', RRType.A).rcode).toBe(Rcode.NXDOMAIN);
    expect(addrs(ask('s7.ns.fed.svc.za.r1.example.com.', RRType.A))).toEqual(['10.0.0.7']);
    expect(addrs(ask('tenant.ns.fed.svc.zf999.r1.example.com.', RRType.A))).toEqual(['10.9.0.1']);
    expect(ask('tenant.ns.fed.svc.zf998.r1.example.com.', RRType.A).rcode).toBe(Rcode.NXDOMAIN);
    fed.close();
  });

  it('a reload that moves the zone to a new domain makes the new zone ready only once every service of it answers', async () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('one'));
    const N = 10_000;
    seed(c, manyServices(N));
    fed.rebuild();
    const s = testFederationSettings();
    const apex = { ...s.apex, domain: 'example.org.', nameservers: [{ name: 'ns1.example.org.', addresses: ['192.0.2.53'] }] };
    fed.reconfigure({ ...s, apex, naming: { ...s.naming, domain: 'example.org.' } });
    const rcodes = new Set<number>();
    const whileReady: number[] = [];
    const slices = await publishesUntilAnswered(fed, ask, `s${N - 1}.ns.fed.example.org.`, (m) => {
      // A name of the new zone not built yet is SERVFAIL, never NXDOMAIN (and no transfer serves the zone).
      rcodes.add(m.rcode);
      if (fed.snapshot.ready && m.rcode !== Rcode.NOERROR) whileReady.push(m.rcode);
    });
    expect(slices).toBeGreaterThan(1);
    expect(whileReady).toEqual([]);
    expect([...rcodes].sort()).toEqual([Rcode.NOERROR, Rcode.SERVFAIL]);
    fed.close();
  }, 60_000);
});

describe('a service whose names cannot be built', () => {
  it('answers as before, marked stale (EDE 3), is counted and logged, and every other service goes on', () => {
    const logs = captureLogs('debug');
    const fed = new Federation(testFederationSettings(), logs.log);
    const responder = new Responder(() => fed.snapshot);
    const ask = (n: string) => decodeMessage(responder.answer(encodeQuery(n, RRType.A, { edns: {} }), 'udp')!);
    const c = fed.addCluster(settings('a', { addressMode: 'endpoints' }));
    seed(c, [svc('bad', []), slice('bad', [{ addr: '10.0.0.1' }]), svc('good', []), slice('good', [{ addr: '10.0.1.1' }])]);
    fed.rebuild();
    // A defect met by some tenant's data, stood in for by a rebuild that throws for one service.
    const builder = fed as unknown as { rebuildService: (key: string, cs: unknown, pace: boolean) => boolean };
    const inner = builder.rebuildService.bind(fed);
    let failing = true;
    builder.rebuildService = (key, cs, pace) => {
      if (failing && key === 'ns/bad') throw new Error('injected');
      return inner(key, cs, pace);
    };
    c.upsert('EndpointSlice', slice('bad', [{ addr: '10.0.0.2' }]));
    c.upsert('EndpointSlice', slice('good', [{ addr: '10.0.1.2' }]));
    c.flush();
    expect(() => fed.rebuild()).not.toThrow();
    const bad = ask('bad.ns.fed.example.com.');
    expect(addrs(bad)).toEqual(['10.0.0.1']);
    expect(bad.edns?.options).toEqual([{ code: EdnsOption.EDE, data: Buffer.from([0, 3]) }]);
    // As any stale answer: its TTL at most ttl.stale, so resolvers keep it no longer.
    expect(bad.answers[0].ttl).toBe(fed.policy.staleTtl);
    expect(fed.policy.staleTtl).toBeLessThan(30);
    const good = ask('good.ns.fed.example.com.');
    expect(addrs(good)).toEqual(['10.0.1.2']);
    expect(good.edns?.options ?? []).toEqual([]);
    expect(fed.rebuildErrors).toBe(1);
    expect(logs.records.some((r) => r.level === 50 && r.service === 'ns/bad')).toBe(true);
    // Its next change builds it again: current, not stale.
    failing = false;
    c.upsert('EndpointSlice', slice('bad', [{ addr: '10.0.0.3' }]));
    c.flush();
    fed.rebuild();
    const fixed = ask('bad.ns.fed.example.com.');
    expect(addrs(fixed)).toEqual(['10.0.0.3']);
    expect(fixed.edns?.options ?? []).toEqual([]);
    fed.close();
  });
});

describe('names held as their addresses', () => {
  it('a headless service\'s endpoint names are held as addresses: an endpoint\'s change leaves the others\' nodes as they are', () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('a', { addressMode: 'endpoints', zones: ['z1'] }));
    const eps = [{ addr: '10.0.0.1' }, { addr: '10.0.0.2' }, { addr: '10.0.0.3' }];
    seed(c, [svc('h', [], { headless: true }), slice('h', eps)]);
    const first = fed.rebuild();
    const endpoint = (a: string) => nameKey(`${a.replaceAll('.', '-')}.a.h.ns.fed.svc.example.com.`);
    for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) expect(first.names.get(endpoint(a))).toBeInstanceOf(AddressNode);
    c.upsert('EndpointSlice', slice('h', eps.slice(0, 2)));
    c.flush();
    const after = fed.rebuild();
    expect(after.names.get(endpoint('10.0.0.1'))).toBe(first.names.get(endpoint('10.0.0.1')));
    expect(after.names.get(endpoint('10.0.0.2'))).toBe(first.names.get(endpoint('10.0.0.2')));
    expect(after.names.get(endpoint('10.0.0.3'))).toBeUndefined();
    expect(addrs(ask('10-0-0-2.a.h.ns.fed.svc.example.com.', RRType.A))).toEqual(['10.0.0.2']);
    // The SRV answers carry the endpoints that are left, with their addresses.
    const srv = ask('_http._tcp.h.ns.fed.svc.example.com.', RRType.SRV);
    expect(srv.answers.map((r) => (r.data as { target: string }).target).sort()).toEqual(['10-0-0-1.a.h.ns.fed.svc.example.com.', '10-0-0-2.a.h.ns.fed.svc.example.com.']);
    expect(srv.additionals.map((r) => r.data).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    fed.close();
  });

  it('regional and zonal names keep only their addresses and answer, transfer and change as the records they stand for', () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('a', { addressMode: 'endpoints', zones: ['z1', 'z2'] }));
    const eps = [{ addr: '10.0.0.1', zone: 'z1' }, { addr: '10.0.0.2', zone: 'z2' }, { addr: '10.0.0.3', zone: 'z2' }];
    seed(c, [svc('s', []), slice('s', eps)]);
    const first = fed.rebuild();
    const zonal = nameKey('s.ns.fed.svc.z2.r1.example.com.');
    const regional = nameKey('s.ns.fed.svc.r1.example.com.');
    const short = nameKey('s.ns.fed.example.com.');
    const global = nameKey('s.ns.fed.svc.example.com.');
    for (const key of [zonal, regional, short, global]) expect(first.names.get(key)).toBeInstanceOf(AddressNode);
    // Such a name keeps no string of its own: its name is its key's.
    expect([zonal, regional, short, global].map((key) => first.names.get(key)!.name)).toEqual([
      's.ns.fed.svc.z2.r1.example.com.',
      's.ns.fed.svc.r1.example.com.',
      's.ns.fed.example.com.',
      's.ns.fed.svc.example.com.',
    ]);
    // The SRV names' additional sections carry the short and global names' addresses, made when asked.
    const srvExtra = (owner: string) => ask(`_http._tcp.${owner}`, RRType.SRV).additionals.map((r) => `${r.name} ${r.data}`);
    for (const owner of ['s.ns.fed.example.com.', 's.ns.fed.svc.example.com.'])
      expect(srvExtra(owner)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((a) => `${owner} ${a}`));
    const node = first.names.get(zonal)!;
    expect(node.recordCount).toBe(2);
    expect(node.records()).toEqual([
      { name: 's.ns.fed.svc.z2.r1.example.com.', type: RRType.A, ttl: 30, data: '10.0.0.2' },
      { name: 's.ns.fed.svc.z2.r1.example.com.', type: RRType.A, ttl: 30, data: '10.0.0.3' },
    ]);
    expect(addrs(ask('s.ns.fed.svc.z2.r1.example.com.', RRType.A))).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(addrs(ask('s.ns.fed.svc.r1.example.com.', RRType.A))).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    // Asked again (the encoding cached) and for other types: the same answers, NODATA for what is not there.
    expect(addrs(ask('s.ns.fed.svc.z2.r1.example.com.', RRType.A))).toEqual(['10.0.0.2', '10.0.0.3']);
    for (const t of [RRType.AAAA, RRType.TXT, RRType.CNAME]) {
      const m = ask('s.ns.fed.svc.z2.r1.example.com.', t);
      expect([m.rcode, m.answers.length, m.authorities[0]?.type]).toEqual([Rcode.NOERROR, 0, RRType.SOA]);
    }
    expect(ask('s.ns.fed.svc.z2.r1.example.com.', RRType.ANY).answers.map((r) => r.data).sort()).toEqual(['10.0.0.2', '10.0.0.3']);
    // The zone's text and its record count include them.
    const text = [...zoneRecords(first)].filter((r) => r.name === 's.ns.fed.svc.z2.r1.example.com.');
    expect(text.map((r) => r.data)).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(first.recordCount).toBe([...zoneRecords(first)].length);
    // The same data again keeps the same nodes (their cached answers stay).
    c.upsert('EndpointSlice', slice('s', eps));
    c.flush();
    expect(fed.rebuild().names.get(zonal)).toBe(node);
    // An endpoint leaves: the zonal name answers without it, and the change lists its records.
    const changes: ZoneChange[] = [];
    fed.on('published', (_s, change) => changes.push(change));
    const zoneOne = nameKey('s.ns.fed.svc.z1.r1.example.com.');
    const srv = nameKey('_http._tcp.s.ns.fed.example.com.');
    const untouched = first.names.get(zoneOne);
    const srvBefore = first.names.get(srv);
    c.upsert('EndpointSlice', slice('s', eps.slice(0, 2)));
    c.flush();
    const after = fed.rebuild();
    // The name that does not hold it keeps its node (and its cached answers); those that did, and
    // the SRV name whose additional section carries the addresses, are made again.
    expect(after.names.get(zoneOne)).toBe(untouched);
    for (const key of [zonal, regional, short, global, srv]) expect(after.names.get(key)).not.toBe(first.names.get(key));
    expect(after.names.get(srv)).not.toBe(srvBefore);
    // Its records stay as they were, held once for both nodes, and no change lists them.
    expect(after.names.get(srv)!.rrsets).toBe(srvBefore!.rrsets);
    expect(changes.flatMap((ch) => [...ch.added, ...ch.removed]).filter((r) => r.type === RRType.SRV)).toEqual([]);
    expect(addrs(ask('s.ns.fed.svc.z2.r1.example.com.', RRType.A))).toEqual(['10.0.0.2']);
    expect(srvExtra('s.ns.fed.example.com.')).toEqual(['s.ns.fed.example.com. 10.0.0.1', 's.ns.fed.example.com. 10.0.0.2']);
    const removed = changes.flatMap((ch) => ch.removed).filter((r) => r.data === '10.0.0.3').map((r) => r.name).sort();
    expect(removed).toEqual(['s.ns.fed.example.com.', 's.ns.fed.svc.example.com.', 's.ns.fed.svc.r1.example.com.', 's.ns.fed.svc.z2.r1.example.com.']);
    expect(changes.every((ch) => ch.unlisted === 0)).toBe(true);
    expect(after.recordCount).toBe(first.recordCount - 4);
    // A zone left empty: the name goes away (NXDOMAIN under a CNAME fallback is for zones with none).
    c.upsert('EndpointSlice', slice('s', [{ addr: '10.0.0.1', zone: 'z1' }]));
    c.flush();
    fed.rebuild();
    const m = ask('s.ns.fed.svc.z2.r1.example.com.', RRType.A);
    expect(m.answers[0]?.type).toBe(RRType.CNAME);
    expect(addrs(m)).toEqual(['10.0.0.1']);
  });

  it('SRV answers whose targets are held as addresses truncate and fill exactly as plain records would, dual stack, on UDP and TCP', () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('a', { addressMode: 'endpoints', zones: ['z1'] }));
    const v4 = Array.from({ length: 150 }, (_, i) => ({ addr: `10.0.${i >> 8}.${i & 255}` }));
    const v6 = Array.from({ length: 150 }, (_, i) => ({ addr: `2001:db8::${i.toString(16)}` }));
    seed(c, [svc('s', []), slice('s', v4, 's-4'), slice('s', v6, 's-6')]);
    const snap = fed.rebuild();
    expect(snap.names.get(nameKey('s.ns.fed.example.com.'))).toBeInstanceOf(AddressNode);
    // The same names, every one as plain records.
    const plain = new ZoneBuilder(testFederationSettings().apex);
    plain.setReady(true);
    const specs = serviceNames(fed.federated('ns/s')!, fed.topologyNow, fed.naming).map((sp) => ({ name: sp.name, rrsets: sp.rrsets, locality: sp.locality }));
    plain.setOwner('ns/s', specs);
    const plainSnap = plain.publish()!.snapshot;
    const ref = new Responder(() => plainSnap);
    const seen = (m: Message) => [m.tc, m.rcode, m.answers.map(rrText).sort(), m.additionals.map(rrText).sort()];
    for (const owner of ['s.ns.fed.example.com.', 's.ns.fed.svc.example.com.'])
      for (const udpSize of [0, 512, 1232, 4096])
        for (const tr of ['udp', 'tcp'] as const) {
          const opts = udpSize ? { id: 1, edns: { udpSize } } : { id: 1 };
          const m = ask(`_http._tcp.${owner}`, RRType.SRV, opts, tr);
          expect(seen(m), `${owner} ${udpSize} ${tr}`).toEqual(seen(decodeMessage(ref.answer(encodeQuery(`_http._tcp.${owner}`, RRType.SRV, opts), tr)!)));
          if (tr === 'tcp') expect(m.additionals.filter((r) => r.name === owner)).toHaveLength(300);
        }
  });

  it('a service taking and dropping a traffic policy moves its short and global names between kinds and changes no record', () => {
    const { fed, ask } = federation();
    const changes: ZoneChange[] = [];
    fed.on('published', (_s, change) => changes.push(change));
    const c = fed.addCluster(settings('a', { addressMode: 'endpoints', zones: ['z1'] }));
    seed(c, [svc('s', []), slice('s', [{ addr: '10.0.0.1', zone: 'z1' }, { addr: '2001:db8::1' }])]);
    fed.rebuild();
    const srvExtra = () => ask('_http._tcp.s.ns.fed.example.com.', RRType.SRV).additionals.map(rrText).sort();
    const before = srvExtra();
    expect(before).toHaveLength(2);
    for (const traffic of [{ policy: 'failover' as const }, undefined, { maxAddresses: 1 }, undefined]) {
      changes.length = 0;
      c.upsert('Service', svc('s', [], traffic ? { traffic } : {}));
      c.flush();
      const snap = fed.rebuild();
      expect(changes.flatMap((ch) => [...ch.added, ...ch.removed]).map(rrText), JSON.stringify(traffic)).toEqual([]);
      for (const name of ['s.ns.fed.example.com.', 's.ns.fed.svc.example.com.']) expect(snap.names.get(nameKey(name)) instanceof AddressNode).toBe(!traffic);
      if (!traffic) expect(srvExtra()).toEqual(before);
    }
  });

  it('a name with a traffic policy is never held as its addresses, and answers its records', () => {
    const b = new ZoneBuilder(testFederationSettings().apex);
    b.setReady(true);
    const name = 'x.example.com.';
    const set = { v4: ['192.0.2.1', '192.0.2.2'], v6: [] };
    const locality = { policy: 'all' as const, order: [], weights: new Map(), maxAddresses: 1, groups: [{ cluster: 'a', zones: [], v4: set.v4, v6: [] }] };
    const rrsets = new Map([[RRType.A, set.v4.map((data) => ({ name, type: RRType.A, ttl: 30, data }))]]);
    b.setOwner('ns/x', [{ name, rrsets, locality, addresses: { ...set, ttl: 30 } }]);
    const snap = b.publish()!.snapshot;
    const node = snap.names.get(nameKey(name))!;
    expect(node).not.toBeInstanceOf(AddressNode);
    expect(node.locality).toBe(locality);
    expect(node.answerFor(RRType.A)?.answer).toEqual([rrsets.get(RRType.A)]);
    const responder = new Responder(() => snap);
    const m = decodeMessage(responder.answer(encodeQuery(name, RRType.A), 'udp')!);
    expect(m.answers.length).toBe(1);
    expect(set.v4).toContain(m.answers[0].data);
  });

  // Before the zone is ready only its apex answers, so a sync of thousands of services published
  // in batches must not spend thousands of serials: it would run the serial ahead of the clock.
  it('publishes made before the zone is ready keep the serial; becoming ready takes one new serial', () => {
    const b = new ZoneBuilder(testFederationSettings().apex);
    const changes: ZoneChange[] = [];
    const first = b.snapshotNow.serial;
    const spec = (i: number) => {
      const name = `s${i}.ns.fed.example.com.`;
      return [{ name, rrsets: new Map([[RRType.A, [{ name, type: RRType.A, ttl: 30, data: `10.0.0.${i}` }]]]) }];
    };
    for (let i = 1; i <= 50; i++) {
      b.setOwner(`ns/s${i}`, spec(i));
      const p = b.publish()!;
      expect(p.snapshot.serial).toBe(first);
      changes.push(p.change);
    }
    b.setReady(true);
    const ready = b.publish()!;
    expect(ready.snapshot.ready).toBe(true);
    expect(ready.snapshot.serial).toBeGreaterThan(first);
    expect(ready.snapshot.serial - first).toBeLessThanOrEqual(Math.max(1, Math.floor(Date.now() / 1000) - first));
    // The change into the first served serial says the whole sync happened unlisted: no IXFR crosses it.
    expect(ready.change.unlisted).toBe(50);
    // Once ready, every change is a new serial again.
    b.setOwner('ns/s1', spec(51));
    expect(b.publish()!.snapshot.serial).toBe(ready.snapshot.serial + 1);
    // An SOA change while not ready is visible at the apex: a new serial even then.
    const other = new ZoneBuilder(testFederationSettings().apex);
    const before = other.snapshotNow.serial;
    const apex = testFederationSettings().apex;
    other.setApex({ ...apex, soa: { ...apex.soa, refresh: apex.soa.refresh + 1 } });
    const soaChanged = other.publish()!.snapshot.serial;
    expect(soaChanged).toBeGreaterThan(before);
    // So is a new address of an in-zone name server (glue), or a new name server.
    const ns = apex.nameservers[0];
    other.setApex({ ...apex, soa: { ...apex.soa, refresh: apex.soa.refresh + 1 }, nameservers: [{ ...ns, addresses: ['192.0.2.99'] }, ...apex.nameservers.slice(1)] });
    const glueChanged = other.publish()!.snapshot.serial;
    expect(glueChanged).toBeGreaterThan(soaChanged);
    other.setApex({ ...apex, soa: { ...apex.soa, refresh: apex.soa.refresh + 1 }, nameservers: [...apex.nameservers, { name: 'ns9.example.net.', addresses: [] }] });
    const nsAdded = other.publish()!.snapshot.serial;
    expect(nsAdded).toBeGreaterThan(glueChanged);
    // The same name servers and glue in another order are the same records: no new serial.
    other.setApex({ ...apex, soa: { ...apex.soa, refresh: apex.soa.refresh + 1 }, nameservers: [{ name: 'ns9.example.net.', addresses: [] }, ...apex.nameservers] });
    expect(other.publish()?.snapshot.serial ?? nsAdded).toBe(nsAdded);
  });

  it('changes made before the zone is ready are counted, not listed: no transfer serves those serials', () => {
    const fed = new Federation(testFederationSettings());
    const changes: ZoneChange[] = [];
    fed.on('published', (_s, change) => changes.push(change));
    const c = fed.addCluster(settings('a'));
    c.upsert('Service', svc('s', ['192.0.2.1']));
    c.upsert('EndpointSlice', slice('s', [{ addr: '10.0.0.1' }]));
    c.markLive();
    c.flush();
    const ready = fed.rebuild();
    expect(ready.ready).toBe(true);
    const syncing = changes.filter((ch) => ch.added.length + ch.removed.length + ch.unlisted > 0);
    expect(syncing.length).toBeGreaterThan(0);
    expect(syncing.flatMap((ch) => ch.added)).toEqual([]);
    // The change into the first ready serial counts every record since the serial before it: all
    // but the apex's SOA, NS and glue (published when the federation was made).
    expect(changes.at(-1)!.unlisted).toBe(ready.recordCount - 3);
    expect(ready.recordCount).toBe([...zoneRecords(ready)].length);
    changes.length = 0;
    c.upsert('Service', svc('s', ['192.0.2.2']));
    c.flush();
    fed.rebuild();
    expect(changes.map((ch) => ch.unlisted)).toEqual([0]);
    // Short, global, regional and zonal names: listed, the regional and zonal ones made from their addresses.
    expect(changes[0].added.map((r) => r.data)).toEqual(Array(4).fill('192.0.2.2'));
    expect(changes[0].removed.map((r) => r.data)).toEqual(Array(4).fill('192.0.2.1'));
    fed.close();
  });
});

describe('names two owners give', () => {
  // prod/a's zonal name in zone "fed" of region "svc" is a.prod.fed.svc.fed.svc.example.com.,
  // and so is endpoint "a" of cluster "prod" of the headless service svc/fed.
  const name = 'a.prod.fed.svc.fed.svc.example.com.';
  const service = (ns: string, n: string, headless: boolean) => svc(n, [], { namespace: ns, headless });
  const endpoint = (ns: string, n: string, addr: string, hostname?: string) => ({ ...slice(n, [{ addr, zone: 'fed', hostname }]), namespace: ns });
  /** Cluster "prod" (region "svc", zone "fed"), whose only zone is named like the federation. */
  const prodCluster = (fed: Federation) => fed.addCluster(settings('prod', { region: 'svc', zones: ['fed'], addressMode: 'endpoints' }));
  /** prod/a and the headless svc/fed (endpoint "a"), added and built one after the other in either order. */
  const bothServices = (prodFirst: boolean) => {
    const { fed, ask } = federation();
    const c = prodCluster(fed);
    const prod = () => seed(c, [service('prod', 'a', false), endpoint('prod', 'a', '10.0.0.1')]);
    const other = () => seed(c, [service('svc', 'fed', true), endpoint('svc', 'fed', '10.0.0.9', 'a')]);
    for (const add of prodFirst ? [prod, other] : [other, prod]) {
      add();
      fed.rebuild();
    }
    return { fed, ask, c };
  };

  it('answer alike whichever service came first, and the other one as soon as the holder goes', () => {
    const answers: string[][] = [];
    for (const prodFirst of [true, false]) {
      const { fed, ask, c } = bothServices(prodFirst);
      answers.push(addrs(ask(name, RRType.A)));
      // Whichever holds it goes: the other's records answer, without that service changing.
      const holder = fed.snapshot.names.get(nameKey(name))!.owner;
      const [ns, n] = holder.split('/');
      c.remove('Service', ns, n);
      c.flush();
      const snap = fed.rebuild();
      expect(addrs(ask(name, RRType.A))).toEqual(holder === 'prod/a' ? ['10.0.0.9'] : ['10.0.0.1']);
      expect(snap.recordCount).toBe(zoneRecords(snap).length);
      fed.close();
    }
    expect(answers[0]).toEqual(answers[1]);
  });

  it("never lend another service's records to an answer: SRV additional data is what the zone holds at the target", () => {
    for (const prodFirst of [true, false]) {
      const { fed, ask, c } = bothServices(prodFirst);
      // svc/fed's SRV targets its endpoint's name, which prod/a holds.
      const held = (name: string) => fed.snapshot.names.get(nameKey(name))?.records().map((r) => `${r.name} ${r.data}`) ?? [];
      const check = () => {
        const m = ask('_http._tcp.fed.svc.fed.svc.example.com.', RRType.SRV);
        expect(m.answers.map((r) => (r.data as { target: string }).target)).toEqual([name]);
        const additional = m.additionals.map((r) => `${r.name} ${r.data}`);
        for (const r of m.additionals) expect(held(r.name)).toContain(`${r.name} ${r.data}`);
        return additional;
      };
      check();
      // prod/a goes: the endpoint's own address answers, and comes as additional data again.
      c.remove('Service', 'prod', 'a');
      c.flush();
      fed.rebuild();
      expect(addrs(ask(name, RRType.A))).toEqual(['10.0.0.9']);
      expect(check()).toEqual([`${name} 10.0.0.9`]);
      fed.close();
    }
  });

  it('are explained as the holder answers them, whatever service the name parses as', () => {
    const { fed } = federation();
    const c = prodCluster(fed);
    seed(c, [service('svc', 'fed', true), endpoint('svc', 'fed', '10.0.0.9', 'a'), service('prod', 'a', false), endpoint('prod', 'a', '10.0.0.1')]);
    fed.rebuild();
    // The name reads as endpoint "a" of svc/fed; prod/a (first in namespace/name order) answers.
    const ex = explain(fed, new Responder(() => fed.snapshot), name);
    expect(ex.parsed.kind).toBe('endpoint');
    expect(ex.service?.key).toBe('svc/fed');
    expect(ex.answer.map((r) => r.split('\t').at(-1))).toEqual(['10.0.0.1']);
    expect(ex.notes).toContain('service prod/a gives this name too and holds it (services in namespace/name order): its records answer, not those of svc/fed, until it lets the name go');
    fed.close();
  });

  it("a name server's glue named like a service's name answers for it, from the reload on", () => {
    const { fed, ask } = federation();
    const c = fed.addCluster(settings('one'));
    seed(c, [svc('a', ['192.0.2.1'], { namespace: 'svc' }), { ...slice('a', [{ addr: '10.0.0.1' }]), namespace: 'svc' }]);
    fed.rebuild();
    expect(addrs(ask('a.svc.fed.example.com.', RRType.A))).toEqual(['192.0.2.1']);
    const s = testFederationSettings();
    const withGlue = { ...s, apex: { ...s.apex, nameservers: [...s.apex.nameservers, { name: 'a.svc.fed.example.com.', addresses: ['192.0.2.54'] }] } };
    fed.reconfigure(withGlue);
    fed.rebuild();
    // The NS answer's glue and the name itself say the same.
    const ns = ask('example.com.', RRType.NS);
    expect(ns.additionals.filter((r) => r.name === 'a.svc.fed.example.com.').map((r) => r.data)).toEqual(['192.0.2.54']);
    expect(addrs(ask('a.svc.fed.example.com.', RRType.A))).toEqual(['192.0.2.54']);
    fed.reconfigure(s);
    fed.rebuild();
    expect(addrs(ask('a.svc.fed.example.com.', RRType.A))).toEqual(['192.0.2.1']);
    expect(fed.snapshot.recordCount).toBe(zoneRecords(fed.snapshot).length);
    fed.close();
  });
});

describe('zone builder', () => {
  const apex = testFederationSettings().apex;
  const a = (name: string, data: string) => ({ name, type: RRType.A, ttl: 30, data });

  /** What is wrong with `change` as IXFR applies it to `before` (removals, each present, then additions) to make `after`. */
  const misapplied = (before: ZoneSnapshot, change: ZoneChange, after: ZoneSnapshot): string[] => {
    const count = (z: ZoneSnapshot) => {
      const m = new Map<string, number>();
      for (const r of zoneRecords(z).slice(1)) m.set(rrText(r), (m.get(rrText(r)) ?? 0) + 1);
      return m;
    };
    const have = count(before);
    const problems: string[] = [];
    for (const r of change.removed) {
      const n = have.get(rrText(r)) ?? 0;
      if (n === 0) problems.push(`removes a record not there: ${rrText(r)}`);
      else have.set(rrText(r), n - 1);
    }
    for (const r of change.added) have.set(rrText(r), (have.get(rrText(r)) ?? 0) + 1);
    const want = count(after);
    for (const [t, n] of have) if (n !== (want.get(t) ?? 0)) problems.push(`${t}: ${n} after the change, ${want.get(t) ?? 0} in the zone`);
    for (const [t, n] of want) if (!have.has(t)) problems.push(`${t}: 0 after the change, ${n} in the zone`);
    return problems;
  };

  it('a change lists each record once, net of what the same batch undid: two reloads before a publish', () => {
    const b = new ZoneBuilder(apex);
    b.setReady(true);
    const first = b.publish()!.snapshot;
    // A name server added by one reload and taken away by the next, before the zone is published.
    b.setApex({ ...apex, nameservers: [...apex.nameservers, { name: 'ns2.example.com.', addresses: ['192.0.2.2'] }] });
    b.setApex(apex);
    const r = b.publish();
    const after = r?.snapshot ?? first;
    if (r) expect(misapplied(first, r.change, after)).toEqual([]);
    expect(zoneRecords(after).map(rrText)).toEqual(zoneRecords(first).map(rrText));
  });

  it('a change lists each record once when one owner gives one name twice: the second stands, every time', () => {
    const b = new ZoneBuilder(apex);
    b.setReady(true);
    let before = b.publish()!.snapshot;
    const twice = (data: string) => [
      { name: 'x.example.com.', rrsets: new Map([[RRType.A, [a('x.example.com.', '192.0.2.1')]]]) },
      { name: 'x.example.com.', rrsets: new Map([[RRType.A, [a('x.example.com.', data)]]]) },
    ];
    for (const data of ['192.0.2.2', '192.0.2.2', '192.0.2.3']) {
      b.setOwner('ns/x', twice(data));
      const r = b.publish();
      const after = r?.snapshot ?? before;
      if (r) expect(misapplied(before, r.change, after)).toEqual([]);
      expect(after.names.get(nameKey('x.example.com.'))?.records().map((rr) => rr.data)).toEqual([data]);
      expect(after.recordCount).toBe(zoneRecords(after).length);
      before = after;
    }
  });

  it("an owner's name without records stays (NODATA) when the names another owner had below it go", () => {
    const b = new ZoneBuilder(apex);
    b.setReady(true);
    b.setOwner('one', [{ name: 'x.example.com.', rrsets: new Map() }]);
    b.setOwner('two', [{ name: 'y.x.example.com.', rrsets: new Map([[RRType.A, [a('y.x.example.com.', '192.0.2.1')]]]) }]);
    b.publish();
    b.setOwner('two', []);
    const snap = b.publish()!.snapshot;
    expect(snap.names.get(nameKey('y.x.example.com.'))).toBeUndefined();
    expect(snap.names.get(nameKey('x.example.com.'))?.owner).toBe('one');
    // The owner's next change starts from that node: one record added, none removed twice.
    b.setOwner('one', [{ name: 'x.example.com.', rrsets: new Map([[RRType.A, [a('x.example.com.', '192.0.2.2')]]]) }]);
    const { snapshot, change } = b.publish()!;
    expect(change.added.map((r) => r.data)).toEqual(['192.0.2.2']);
    expect(change.removed).toEqual([]);
    expect(snapshot.recordCount).toBe(zoneRecords(snapshot).length);
    // Gone, with nothing below it: NXDOMAIN.
    b.setOwner('one', []);
    expect(b.publish()!.snapshot.names.get(nameKey('x.example.com.'))).toBeUndefined();
  });

  it('a name two owners give goes to the same one in any order, and to the other as soon as it is let go', () => {
    const spec = (data: string) => [{ name: 'x.example.com.', rrsets: new Map([[RRType.A, [a('x.example.com.', data)]]]) }];
    const held = (s: { names: { get(k: string): { owner: string; records(): { data: unknown }[] } | undefined } }) => {
      const n = s.names.get(nameKey('x.example.com.'));
      return n && [n.owner, ...n.records().map((r) => r.data)];
    };
    // Replicas and restarts see services in any order: the zone must not depend on it.
    for (const order of [['ns/a', 'ns/b'], ['ns/b', 'ns/a']]) {
      const b = new ZoneBuilder(apex);
      b.setReady(true);
      for (const owner of order) b.setOwner(owner, spec(owner === 'ns/a' ? '192.0.2.1' : '192.0.2.2'));
      expect(held(b.publish()!.snapshot)).toEqual(['ns/a', '192.0.2.1']);
      // ns/a goes; ns/b is not set again (nothing of it changed), and its name answers at once.
      b.setOwner('ns/a', []);
      const { snapshot, change } = b.publish()!;
      expect(held(snapshot)).toEqual(['ns/b', '192.0.2.2']);
      expect([change.removed.map((r) => r.data), change.added.map((r) => r.data)]).toEqual([['192.0.2.1'], ['192.0.2.2']]);
      expect(snapshot.recordCount).toBe(zoneRecords(snapshot).length);
      // ns/a back: it holds the name again, and ns/b's next change keeps off it.
      b.setOwner('ns/a', spec('192.0.2.3'));
      b.setOwner('ns/b', spec('192.0.2.4'));
      const back = b.publish()!;
      expect(held(back.snapshot)).toEqual(['ns/a', '192.0.2.3']);
      expect(back.snapshot.recordCount).toBe(zoneRecords(back.snapshot).length);
      b.setOwner('ns/a', []);
      expect(held(b.publish()!.snapshot)).toEqual(['ns/b', '192.0.2.4']);
    }
  });

  it("a name another owner holds is not taken, and is taken once that owner lets it go", () => {
    const b = new ZoneBuilder(apex);
    b.setReady(true);
    const spec = (data: string) => [{ name: 'x.example.com.', rrsets: new Map([[RRType.A, [a('x.example.com.', data)]]]) }];
    b.setOwner('one', spec('192.0.2.1'));
    b.setOwner('two', spec('192.0.2.2'));
    let snap = b.publish()!.snapshot;
    expect(snap.names.get(nameKey('x.example.com.'))?.records().map((r) => r.data)).toEqual(['192.0.2.1']);
    b.setOwner('one', []);
    b.setOwner('two', spec('192.0.2.3'));
    snap = b.publish()!.snapshot;
    expect(snap.names.get(nameKey('x.example.com.'))?.records().map((r) => r.data)).toEqual(['192.0.2.3']);
    b.setOwner('two', spec('192.0.2.4'));
    const { snapshot, change } = b.publish()!;
    expect(snapshot.names.get(nameKey('x.example.com.'))?.records().map((r) => r.data)).toEqual(['192.0.2.4']);
    expect(change.removed.map((r) => r.data)).toEqual(['192.0.2.3']);
    expect(snapshot.recordCount).toBe(zoneRecords(snapshot).length);
  });
});

describe('explaining a cluster that has not synced', () => {
  // A cluster that cannot even start (its kubeconfig lacks the context) stays syncing: explain
  // says why, and never that the service is "not in this cluster", which it cannot know.
  it('gives the reason the source reported, for names with and without a service', () => {
    const fed = new Federation(testFederationSettings());
    const a = fed.addCluster(settings('a'));
    seed(a, [svc('s', ['192.0.2.1'])]);
    const b = fed.addCluster(settings('b'));
    b.markBroken('kubeconfig: kubeconfig has no context "b" (it has: none)');
    fed.rebuild();
    const responder = new Responder(() => fed.snapshot);
    for (const name of ['s.ns.fed.example.com.', 'missing.ns.fed.example.com.']) {
      const ex = explain(fed, responder, name);
      const verdict = ex.service!.clusters.find((v) => v.cluster === 'b')!;
      expect(verdict.health, name).toBe('syncing');
      expect(verdict.reason, name).toBe('cluster has not synced yet: kubeconfig: kubeconfig has no context "b" (it has: none)');
    }
    // Not synced for want of time alone: no reason to add.
    const c = fed.addCluster(settings('c'));
    fed.rebuild();
    expect(explain(fed, responder, 's.ns.fed.example.com.').service!.clusters.find((v) => v.cluster === 'c')!.reason).toBe('cluster has not synced yet');
    expect(c.health).toBe('syncing');
    fed.close();
  });
});
