// Traffic policies: annotations, client identification (source address and ECS), and the answers
// each policy gives, through the responder as the server runs it.
import { describe, expect, it } from 'vitest';
import type { ClusterSettings } from '../../src/cluster/state.js';
import { ClientMap } from '../../src/client-map.js';
import { Federation } from '../../src/federation/federation.js';
import { Responder } from '../../src/server/responder.js';
import { explain } from '../../src/ops/explain.js';
import { EdnsOption, Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery, type Message } from '../../src/wire/message.js';
import { parseFailover, parseMaxAddresses, parsePolicy, parseWeights, type ClientPlace } from '../../src/traffic-policy.js';
import { slimService } from '../../src/cluster/objects.js';
import { clientMap } from '../../src/app.js';
import { configSchema } from '../../src/config/schema.js';
import { planFor, type ServiceLocality } from '../../src/zone/locality.js';
import { seed, slice, testFederationSettings } from '../support/federation.js';

const cluster = (name: string, region: string, zone: string): ClusterSettings => ({ name, region, zones: [zone], addressMode: 'endpoints', gracePeriod: 300 });

const place = (cluster: string | undefined, region: string | undefined, zones: string[]): ClientPlace => ({ cluster, region, zones, via: cluster ?? 'client' });

/**
 * alpha (r1/z1a) 10.1.0.x, bravo (r1/z1b) 10.2.0.x, charlie (r2/z2) 10.3.0.x, each serving "web"
 * with the annotations given per cluster. Clients: 192.0.2.1 is in alpha, .2 in bravo, .3 in
 * charlie, 198.51.100.0/24 is an office in r1/z1b, anything else is unknown.
 */
function world(annotations: Record<string, Record<string, string>>, opts: { ecs?: boolean; endpoints?: Record<string, string[]> } = {}) {
  const fed = new Federation(testFederationSettings());
  const defs: [string, string, string, string[]][] = [
    ['alpha', 'r1', 'z1a', ['10.1.0.1', '10.1.0.2']],
    ['bravo', 'r1', 'z1b', ['10.2.0.1']],
    ['charlie', 'r2', 'z2', ['10.3.0.1', '10.3.0.2', '10.3.0.3']],
  ];
  const states = new Map<string, ReturnType<Federation['addCluster']>>();
  for (const [name, region, zone, addrs] of defs) {
    const c = fed.addCluster(cluster(name, region, zone));
    states.set(name, c);
    const eps = (opts.endpoints?.[name] ?? addrs).map((addr) => ({ addr, zone }));
    const service = slimService({ metadata: { name: 'web', namespace: 'ns', annotations: annotations[name] ?? {} }, spec: { ports: [{ name: 'http', port: 80 }] } });
    seed(c, [service, ...(eps.length ? [slice('web', eps)] : [])]);
  }
  fed.rebuild();
  const responder = new Responder(() => fed.snapshot);
  const places: Record<string, ClientPlace> = {
    alpha: place('alpha', 'r1', ['z1a']),
    bravo: place('bravo', 'r1', ['z1b']),
    charlie: place('charlie', 'r2', ['z2']),
    office: place(undefined, 'r1', ['z1b']),
  };
  const clients = new ClientMap([
    { network: '192.0.2.1/32', place: places.alpha },
    { network: '192.0.2.2/32', place: places.bravo },
    { network: '192.0.2.3/32', place: places.charlie },
    { network: '198.51.100.0/24', place: places.office },
  ]);
  responder.traffic = { clients, ecs: opts.ecs ?? false };
  const ask = (from: string, type: number = RRType.A, name = 'web.ns.fed.example.com.', options?: { code: number; data: Buffer }[]): Message => {
    const out = responder.answer(encodeQuery(name, type, { id: 7, edns: { udpSize: 1232, options } }), 'udp', undefined, from);
    return decodeMessage(out!);
  };
  const addrs = (m: Message) => m.answers.filter((r) => r.type === RRType.A || r.type === RRType.AAAA).map((r) => r.data as string).sort();
  return { fed, responder, states, ask, addrs };
}

const ALL = ['10.1.0.1', '10.1.0.2', '10.2.0.1', '10.3.0.1', '10.3.0.2', '10.3.0.3'];

describe('traffic-policy annotations', () => {
  it('read only well-formed values', () => {
    expect(parsePolicy(' Nearest ')).toBe('nearest');
    expect(parsePolicy('closest')).toBeUndefined();
    expect(parseFailover('alpha, bravo,charlie')).toEqual(['alpha', 'bravo', 'charlie']);
    expect(parseFailover('alpha,alpha')).toBeUndefined();
    expect(parseFailover('alpha,Bad_Name')).toBeUndefined();
    expect(parseFailover(Array.from({ length: 65 }, (_, i) => `c${i}`).join(','))).toBeUndefined();
    expect(parseWeights('alpha=3, bravo=0')).toEqual([['alpha', 3], ['bravo', 0]]);
    for (const bad of ['alpha', 'alpha=-1', 'alpha=1.5', 'alpha=2000000', 'alpha=1,alpha=2', '=3', 'a b=1']) expect(parseWeights(bad), bad).toBeUndefined();
    expect(parseMaxAddresses('8')).toBe(8);
    for (const bad of ['0', '1001', '-1', '2.5', 'eight', '']) expect(parseMaxAddresses(bad), bad).toBeUndefined();
  });

  it('that do not read are ignored and reported, the others kept', () => {
    const s = slimService({
      metadata: { name: 'web', namespace: 'ns', annotations: { 'fedns.io/policy': 'nearest', 'fedns.io/weights': 'alpha=x', 'fedns.io/max-addresses': '4' } },
      spec: {},
    });
    expect(s.traffic).toEqual({ policy: 'nearest', maxAddresses: 4 });
    expect(s.ignored).toEqual([{ reason: 'policy annotation', value: 'fedns.io/weights: alpha=x' }]);
  });
});

describe('client map', () => {
  const p = (name: string) => place(name, undefined, []);
  const map = new ClientMap([
    { network: '10.0.0.0/8', place: p('wide') },
    { network: '10.8.0.0/14', place: p('pods') },
    { network: '10.8.1.7', place: p('node') },
    { network: '2001:db8::/32', place: p('v6') },
    { network: '2001:db8:1::/48', place: p('v6narrow') },
    { network: '10.8.0.0/14', place: p('again') },
    { network: '10.0.0.0/33', place: p('bad') },
  ]);

  it('places a source address by its most specific network', () => {
    expect(map.lookup('10.8.1.7')?.place.cluster).toBe('node');
    expect(map.lookup('10.8.1.8')?.place.cluster).toBe('pods');
    expect(map.lookup('10.200.0.1')?.place.cluster).toBe('wide');
    expect(map.lookup('::ffff:10.8.1.8')?.place.cluster).toBe('pods');
    expect(map.lookup('2001:db8:1::5')?.place.cluster).toBe('v6narrow');
    expect(map.lookup('2001:db8:2::5')?.place.cluster).toBe('v6');
    expect(map.lookup('192.0.2.1')).toBeUndefined();
    expect(map.lookup('not an address')).toBeUndefined();
    expect(map.duplicates).toEqual(['10.8.0.0/14']);
    expect(map.invalid).toEqual(['10.0.0.0/33']);
  });

  it('scopes a match to the network, unless more specific networks lie inside it', () => {
    // 10.8.0.0/14 holds 10.8.1.7: an answer for the /14 does not hold for all of it.
    expect(map.lookupSubnet(1, Buffer.from([10, 8, 2]), 24)).toMatchObject({ network: '10.8.0.0/14', scope: 24 });
    expect(map.lookupSubnet(1, Buffer.from([10, 8, 1, 7]), 32)).toMatchObject({ network: '10.8.1.7', scope: 32 });
    // A subnet wider than every network it could be in is known only as far as it goes.
    expect(map.lookupSubnet(1, Buffer.from([10]), 8)).toMatchObject({ network: '10.0.0.0/8', scope: 8 });
    expect(map.lookupSubnet(1, Buffer.from([10, 8]), 12)?.network).toBe('10.0.0.0/8');
    const flat = new ClientMap([{ network: '172.16.0.0/12', place: p('flat') }]);
    expect(flat.lookupSubnet(1, Buffer.from([172, 20, 1]), 24)).toMatchObject({ scope: 12 });
    expect(map.lookupSubnet(2, Buffer.from([0x20, 0x01, 0x0d, 0xb8, 0, 1]), 48)?.network).toBe('2001:db8:1::/48');
  });

  // As a source address ::ffff:10.8.1.8 is the IPv4 client 10.8.1.8; so is an ECS subnet written
  // that way, with its scope counted in the option's own (IPv6) bits.
  it('places an ECS subnet written as IPv4-mapped IPv6 as its IPv4 network, scope in IPv6 bits', () => {
    const mapped = (v4: number[], source: number) => map.lookupSubnet(2, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4]), source);
    expect(mapped([10, 8, 1, 7], 128)).toMatchObject({ network: '10.8.1.7', place: { cluster: 'node' }, scope: 128 });
    expect(mapped([10, 8, 2, 0], 120)).toMatchObject({ network: '10.8.0.0/14', scope: 120 });
    expect(mapped([172, 20, 1, 0], 120)).toBeUndefined();
    const flat = new ClientMap([{ network: '172.16.0.0/12', place: p('flat') }]);
    expect(flat.lookupSubnet(2, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 172, 20, 1]), 120)).toMatchObject({ scope: 108 });
    // A prefix shorter than 96 bits is not inside the mapped space: not an IPv4 subnet.
    expect(flat.lookupSubnet(2, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff]), 88)).toBeUndefined();
    // Asked again, the cached whole-address match keeps its IPv4 scope.
    expect(map.lookupSubnet(1, Buffer.from([10, 8, 1, 7]), 32)).toMatchObject({ network: '10.8.1.7', scope: 32 });
  });
});

describe('client map from the configuration', () => {
  it('never lets networks learned from nodes take clients the configuration places elsewhere', () => {
    const config = configSchema.parse({
      clusters: [
        { name: 'alpha', region: 'r1', clientNetworks: ['10.8.0.0/14'], source: { type: 'files', path: '.' } },
        { name: 'bravo', region: 'r1', clientNetworks: 'auto', source: { type: 'files', path: '.' } },
      ],
      clients: [{ networks: ['192.0.2.0/24'], region: 'r2' }],
    }) as unknown as Parameters<typeof clientMap>[0];
    const fed = new Federation(testFederationSettings());
    fed.addCluster(cluster('alpha', 'r1', 'z1a'));
    const bravo = fed.addCluster(cluster('bravo', 'r1', 'z1b'));
    // A tenant's Node in bravo claims an address of alpha's pod network, the office, and a wide block.
    bravo.setLearnedNetworks(['10.8.1.7/32', '192.0.2.9/32', '10.0.0.0/8', '172.16.0.0/24']);
    const map = clientMap(config, fed.clusters);
    expect(map.lookup('10.8.1.7')?.place.cluster).toBe('alpha');
    expect(map.lookup('192.0.2.9')?.place.via).toBe('clients[0]');
    expect(map.lookup('10.9.0.1')?.place.cluster).toBe('alpha'); // inside 10.8.0.0/14: the configured /14 is more specific than the /8
    expect(map.lookup('10.200.0.1')?.place.cluster).toBe('bravo');
    expect(map.lookup('172.16.0.5')?.place.cluster).toBe('bravo');
    expect(map.overridden).toBe(2);
  });
});

describe('policies', () => {
  it('all: everyone gets every address', () => {
    const { ask, addrs } = world({});
    for (const from of ['192.0.2.1', '192.0.2.3', '203.0.113.9']) expect(addrs(ask(from))).toEqual(ALL);
  });

  it('nearest: own cluster, then zone, then region, then everything; unknown clients get everything', () => {
    const ann = { 'fedns.io/policy': 'nearest' };
    const { ask, addrs, states, fed } = world({ alpha: ann, bravo: ann, charlie: ann });
    expect(addrs(ask('192.0.2.1'))).toEqual(['10.1.0.1', '10.1.0.2']);
    expect(addrs(ask('192.0.2.2'))).toEqual(['10.2.0.1']);
    expect(addrs(ask('192.0.2.3'))).toEqual(['10.3.0.1', '10.3.0.2', '10.3.0.3']);
    // The office is in r1/z1b, where bravo is: its zone tier.
    expect(addrs(ask('198.51.100.77'))).toEqual(['10.2.0.1']);
    expect(addrs(ask('203.0.113.9'))).toEqual(ALL);
    // The global Federation v1 name and the SRV targets follow the same policy.
    expect(addrs(ask('192.0.2.2', RRType.A, 'web.ns.fed.svc.example.com.'))).toEqual(['10.2.0.1']);
    const srv = ask('192.0.2.2', RRType.SRV, '_http._tcp.web.ns.fed.example.com.');
    expect(srv.answers.map((r) => r.type)).toEqual([RRType.SRV]);
    expect(srv.additionals.filter((r) => r.type === RRType.A).map((r) => r.data)).toEqual(['10.2.0.1']);
    // Regional names keep their meaning: r2 is charlie's, whoever asks.
    expect(addrs(ask('192.0.2.1', RRType.A, 'web.ns.fed.svc.r2.example.com.'))).toEqual(['10.3.0.1', '10.3.0.2', '10.3.0.3']);

    // bravo loses its last ready endpoint: its clients fall to their region (alpha), then back.
    seed(states.get('bravo')!, [slice('web', [{ addr: '10.2.0.1', ready: false, zone: 'z1b' }])]);
    fed.rebuild();
    expect(addrs(ask('192.0.2.2'))).toEqual(['10.1.0.1', '10.1.0.2']);
    expect(addrs(ask('198.51.100.77'))).toEqual(['10.1.0.1', '10.1.0.2']);
    // alpha too: the r1 clients get everything that is left (charlie).
    seed(states.get('alpha')!, [slice('web', [{ addr: '10.1.0.1', ready: false, zone: 'z1a' }])]);
    fed.rebuild();
    expect(addrs(ask('192.0.2.2'))).toEqual(['10.3.0.1', '10.3.0.2', '10.3.0.3']);
    seed(states.get('bravo')!, [slice('web', [{ addr: '10.2.0.1', zone: 'z1b' }])]);
    fed.rebuild();
    expect(addrs(ask('192.0.2.2'))).toEqual(['10.2.0.1']);
  });

  it('failover: the first listed cluster with healthy addresses, unlisted ones last and together', () => {
    const ann = { 'fedns.io/policy': 'failover', 'fedns.io/failover': 'bravo,alpha' };
    const { ask, addrs, states, fed } = world({ alpha: ann, bravo: ann, charlie: ann });
    for (const from of ['192.0.2.1', '192.0.2.3', '203.0.113.9']) expect(addrs(ask(from))).toEqual(['10.2.0.1']);
    // ANY (one RRset, RFC 8482) gives that RRset as A would.
    expect(addrs(ask('203.0.113.9', RRType.ANY))).toEqual(['10.2.0.1']);
    seed(states.get('bravo')!, [slice('web', [{ addr: '10.2.0.1', ready: false, zone: 'z1b' }])]);
    fed.rebuild();
    expect(addrs(ask('192.0.2.3'))).toEqual(['10.1.0.1', '10.1.0.2']);
    seed(states.get('alpha')!, [slice('web', [{ addr: '10.1.0.1', ready: false, zone: 'z1a' }])]);
    fed.rebuild();
    expect(addrs(ask('192.0.2.3'))).toEqual(['10.3.0.1', '10.3.0.2', '10.3.0.3']);
  });

  it('weighted: each answer is one cluster, drawn by weight (10,000 answers within 3 points); weight 0 only when nothing else is left', () => {
    const ann = { 'fedns.io/policy': 'weighted', 'fedns.io/weights': 'alpha=3,bravo=1,charlie=0' };
    const { ask, addrs, states, fed } = world({ alpha: ann, bravo: ann, charlie: ann });
    const counts = new Map<string, number>();
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      const got = addrs(ask('203.0.113.9')).join(' ');
      counts.set(got, (counts.get(got) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['10.1.0.1 10.1.0.2', '10.2.0.1']);
    expect(Math.abs((100 * counts.get('10.1.0.1 10.1.0.2')!) / N - 75)).toBeLessThanOrEqual(3);
    expect(Math.abs((100 * counts.get('10.2.0.1')!) / N - 25)).toBeLessThanOrEqual(3);
    for (const name of ['alpha', 'bravo']) {
      const first = name === 'alpha' ? '10.1.0.1' : '10.2.0.1';
      seed(states.get(name)!, [slice('web', [{ addr: first, ready: false, zone: 'z' }])]);
    }
    fed.rebuild();
    expect(addrs(ask('203.0.113.9'))).toEqual(['10.3.0.1', '10.3.0.2', '10.3.0.3']);
  });

  it('explain without a client says which policies answer every client alike', () => {
    for (const [policy, note] of [
      ['weighted', /^traffic policy weighted: each answer is one cluster drawn by weight, for every client alike; give a client/],
      ['failover', /^traffic policy failover: every client gets the first healthy cluster in order; give a client/],
      ['nearest', /^traffic policy nearest: the answer depends on who asks; give a client/],
    ] as const) {
      const ann = { 'fedns.io/policy': policy };
      const { fed, responder } = world({ alpha: ann, bravo: ann, charlie: ann });
      const notes = explain(fed, responder, 'web.ns.fed.example.com.').notes;
      expect(notes.filter((n) => note.test(n)), notes.join('\n')).toHaveLength(1);
      fed.close();
    }
  });

  it('maxAddresses: answers of at most N addresses, spread across clusters and zones, rotating through all of them', () => {
    const ann = { 'fedns.io/max-addresses': '3' };
    const many = {
      alpha: Array.from({ length: 6 }, (_, i) => `10.1.0.${i + 1}`),
      bravo: Array.from({ length: 6 }, (_, i) => `10.2.0.${i + 1}`),
      charlie: Array.from({ length: 6 }, (_, i) => `10.3.0.${i + 1}`),
    };
    const { ask, addrs } = world({ alpha: ann, bravo: ann, charlie: ann }, { endpoints: many });
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const got = addrs(ask('203.0.113.9'));
      expect(got).toHaveLength(3);
      // One address of each cluster in every answer.
      expect(new Set(got.map((a) => a.split('.')[1]))).toEqual(new Set(['1', '2', '3']));
      for (const a of got) seen.add(a);
    }
    expect(seen.size).toBe(18);
  });

  it('copies that disagree: the value most copies hold, ties by cluster order, and the disagreement is listed', () => {
    const { ask, addrs, fed } = world({ alpha: { 'fedns.io/policy': 'failover' }, bravo: { 'fedns.io/policy': 'nearest' }, charlie: { 'fedns.io/policy': 'nearest' } });
    expect(addrs(ask('192.0.2.2'))).toEqual(['10.2.0.1']); // nearest, 2 votes to 1
    expect(fed.policyDisagreements.get('ns/web')).toEqual(['fedns.io/policy']);
    const tie = world({ alpha: { 'fedns.io/policy': 'failover' }, bravo: { 'fedns.io/policy': 'nearest' } });
    expect(tie.addrs(tie.ask('192.0.2.2'))).toEqual(['10.1.0.1', '10.1.0.2']); // failover (alpha first), in cluster order
    expect(tie.fed.federated('ns/web')!.traffic.disagreements[0]).toMatchObject({ chosen: 'failover', values: { alpha: 'failover', bravo: 'nearest', charlie: '-' } });
  });
});

describe('EDNS Client Subnet', () => {
  const ecs = (family: number, source: number, addr: number[], scope = 0) => ({ code: EdnsOption.CLIENT_SUBNET, data: Buffer.from([0, family, source, scope, ...addr]) });
  const echoed = (m: Message) => m.edns?.options.find((o) => o.code === EdnsOption.CLIENT_SUBNET)?.data;
  const ann = { 'fedns.io/policy': 'nearest' };

  it('on: the subnet identifies the client, and the answer echoes it with the deciding prefix as scope', () => {
    const { ask, addrs } = world({ alpha: ann, bravo: ann, charlie: ann }, { ecs: true });
    // Asked by a resolver in no network, for a client in the office (198.51.100.0/24).
    const m = ask('203.0.113.9', RRType.A, undefined, [ecs(1, 24, [198, 51, 100])]);
    expect(addrs(m)).toEqual(['10.2.0.1']);
    expect([...echoed(m)!]).toEqual([0, 1, 24, 24, 198, 51, 100]);
    // A client in no network: everything, for exactly the prefix asked about.
    const u = ask('192.0.2.1', RRType.A, undefined, [ecs(1, 24, [203, 0, 113])]);
    expect(addrs(u)).toEqual(ALL);
    expect([...echoed(u)!]).toEqual([0, 1, 24, 24, 203, 0, 113]);
    // SOURCE 0 (the client asked for no subnet to be used): the same answer for everyone, scope 0.
    const z = ask('192.0.2.1', RRType.A, undefined, [ecs(1, 0, [])]);
    expect(addrs(z)).toEqual(ALL);
    expect([...echoed(z)!]).toEqual([0, 1, 0, 0]);
    // Negative answers echo it too, scope 0.
    const nx = ask('192.0.2.1', RRType.A, 'nothing.ns.fed.example.com.', [ecs(1, 24, [198, 51, 100])]);
    expect(nx.rcode).toBe(Rcode.NXDOMAIN);
    expect([...echoed(nx)!]).toEqual([0, 1, 24, 0, 198, 51, 100]);
  });

  it('on, for a policy that answers everyone alike: scope 0', () => {
    const fo = { 'fedns.io/policy': 'failover' };
    const { ask, addrs } = world({ alpha: fo, bravo: fo, charlie: fo }, { ecs: true });
    const m = ask('203.0.113.9', RRType.A, undefined, [ecs(1, 24, [198, 51, 100])]);
    expect(addrs(m)).toEqual(['10.1.0.1', '10.1.0.2']);
    expect(echoed(m)![3]).toBe(0);
  });

  it('off: the option is not echoed and the source address decides', () => {
    const { ask, addrs } = world({ alpha: ann, bravo: ann, charlie: ann }, { ecs: false });
    const m = ask('192.0.2.1', RRType.A, undefined, [ecs(1, 24, [198, 51, 100])]);
    expect(addrs(m)).toEqual(['10.1.0.1', '10.1.0.2']);
    expect(echoed(m)).toBeUndefined();
  });

  it('malformed: FORMERR', () => {
    const { ask } = world({ alpha: ann }, { ecs: true });
    const bad = [
      ecs(1, 24, [198, 51, 100], 8), // scope set in a query
      ecs(1, 20, [198, 51, 0xff]), // bits past the prefix
      ecs(1, 33, [1, 2, 3, 4, 5]), // prefix past the address
      ecs(3, 8, [1]), // unknown family
      ecs(1, 24, [198, 51]), // address shorter than the prefix
    ];
    for (const o of bad) expect(ask('192.0.2.1', RRType.A, undefined, [o]).rcode, o.data.toString('hex')).toBe(Rcode.FORMERR);
    expect(ask('192.0.2.1', RRType.A, undefined, [ecs(1, 24, [198, 51, 100]), ecs(1, 24, [198, 51, 100])]).rcode).toBe(Rcode.FORMERR);
  });
});

describe('plans per client place', () => {
  // A service with many addresses and a small cap has many windows: its plan is big, so it must be
  // made once per distinct answer, not once per place object (the client map makes new place
  // objects at every rebuild: learned networks, topology) nor per place for a policy that answers
  // everyone alike.
  const v4 = Array.from({ length: 2000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1`);
  const loc = (policy: ServiceLocality['policy']): ServiceLocality => ({
    policy,
    order: ['alpha', 'bravo'],
    weights: new Map([['alpha', 1]]),
    maxAddresses: 1,
    groups: [{ cluster: 'alpha', region: 'r1', zones: ['z1a'], v4, v6: [] }],
  });

  it('a policy that answers everyone alike has one plan whatever the place', () => {
    for (const policy of ['all', 'failover', 'weighted'] as const) {
      const l = loc(policy);
      const first = planFor(l, place('alpha', 'r1', ['z1a']), 4);
      expect(first.choices[0].windows).toHaveLength(2000);
      for (const p of [place('bravo', 'r1', ['z1b']), place(undefined, 'r2', []), undefined]) expect(planFor(l, p, 4), policy).toBe(first);
    }
  });

  it('nearest: places that are alike share a plan, however many times the client map is rebuilt', () => {
    const l = loc('nearest');
    const first = planFor(l, place('alpha', 'r1', ['z1a']), 4);
    for (let i = 0; i < 100; i++) expect(planFor(l, place('alpha', 'r1', ['z1a']), 4)).toBe(first);
    expect(planFor(l, place('bravo', 'r1', ['z1b']), 4)).not.toBe(first);
  });
});
