// Cost of one endpoint change as the zone grows: the same change (one EndpointSlice of one
// service flipping an endpoint's readiness) applied to a federation of 1,000 and of 100,000
// services, from ClusterState.upsert to the new snapshot being published. The ratio should stay
// near 1: a change's cost must not grow with the zone.
//
// Each size runs in a node process of its own, as a fedns of that size would: sharing one process
// put the small federation's changes in the big one's heap and had the two evict each other from
// the CPU's caches turn by turn. The sizes take turns, process by process, for a few rounds, so
// that on a busy machine the drift of its conditions shows as a spread across rounds, and each
// round's ratio compares neighbours in time.
//
// Each run also prints the bytes a change allocates (V8's sampling heap profiler, counting what
// the collector has freed since): a figure that machine noise does not move, and whose ratio tells
// whether a change does more work in the big zone or the same work more slowly.
//
// The anchor: a size written "1000+100000" changes a 1,000-service federation in a process that
// also holds a 100,000-service federation it never touches. Its change does the small zone's work
// in the big zone's heap, so the big zone's ratio to it is what the zone's size costs a change,
// apart from what a heap that size costs any JavaScript running in it (V8's collections, memory).
//
// The anchor from outside: Knot DNS given the same zone (the master file fedns makes of it) and
// the same change as a dynamic update (RFC 2136): the endpoint's address deleted from, or added
// back to, every name of the service that holds it. Timed from the update sent to Knot's answer,
// one at a time, each size in the same round as fedns's (KNOT_CHANGES updates per size).
// usage: node dist/benchmarks/change-cost.js [changes=5000] [rounds=3] [sizes=1000,1000+100000,100000]
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import { packSlice, type SlimEndpointSlice, type SlimService } from '../src/cluster/objects.js';
import { Federation } from '../src/federation/federation.js';
import { RRClass, RRType } from '../src/wire/constants.js';
import { decodeMessage, encodeMessage } from '../src/wire/message.js';
import type { RR } from '../src/wire/records.js';
import { masterFile, zoneRecords } from '../src/zone/masterfile.js';
import { seed, testFederationSettings } from '../test/support/federation.js';
import { requirePeer, startKnot } from '../test/support/peers.js';

const CHANGES = Number(process.argv[2] ?? 5000);
const WARM_UP = 3000;
const ROUNDS = Number(process.argv[3] ?? 3);
/** "n" or "n+ballast": n services changed, beside a federation of `ballast` services never touched. */
const SIZES = (process.argv[4] ?? '1000,1000+100000,100000').split(',');
/** Knot's updates per size and round (after KNOT_WARM_UP): each costs milliseconds, not microseconds. */
const KNOT_CHANGES = Number(process.env.KNOT_CHANGES ?? 40);
const KNOT_WARM_UP = 5;
/** Sizes Knot runs: those without a ballast. */
const KNOT_SIZES = SIZES.filter((s) => !s.includes('+'));

interface Figures {
  services: number;
  /** Services of the untouched federation beside it (0: none). */
  ballast: number;
  records: number;
  buildMs: number;
  median: number;
  p99: number;
  mean: number;
  /** Bytes allocated per change (sampled). */
  allocated: number;
}

/** Bytes allocated per call of `fn`, over `calls` calls, by V8's sampling heap profiler. */
async function allocatedPerCall(fn: (k: number) => void, calls: number): Promise<number> {
  const session = new Session();
  session.connect();
  try {
    // Every 256 bytes on average, and objects the collector freed since count too.
    await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    for (let k = 0; k < calls; k++) fn(k);
    const { profile } = await session.post('HeapProfiler.stopSampling');
    let bytes = 0;
    const stack = [profile.head];
    for (let node = stack.pop(); node; node = stack.pop()) {
      bytes += node.selfSize;
      stack.push(...node.children);
    }
    return bytes / calls;
  } finally {
    session.disconnect();
  }
}

/**
 * Builds a federation of `services` services (after one of `ballast` services that stays
 * untouched, if any) and times CHANGES changes to it (one size, this process).
 */
async function measure(size: string): Promise<Figures> {
  const [services, ballast = 0] = size.split('+').map(Number);
  const untouched = ballast ? build(ballast) : undefined;
  const t0 = performance.now();
  const { fed, c, slice } = build(services);
  const buildMs = performance.now() - t0;
  // Each service's own readiness flag, so every flip really changes that service.
  const ready = new Uint8Array(services).fill(1);
  const flip = (i: number) => {
    ready[i] ^= 1;
    c.upsert('EndpointSlice', slice(i, ready[i] === 1));
    c.flush();
    fed.rebuild();
  };
  // Warm-up: until the JIT has compiled the change's path (a process of its own starts cold).
  for (let i = 0; i < WARM_UP; i++) flip((i * 31) % services);
  const times: number[] = [];
  for (let k = 0; k < CHANGES; k++) {
    const s = performance.now();
    flip((k * 7919) % services);
    times.push((performance.now() - s) * 1000);
  }
  const records = fed.snapshot.recordCount;
  const allocated = await allocatedPerCall((k) => flip((k * 4099) % services), CHANGES);
  fed.close();
  untouched?.fed.close();
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  times.sort((x, y) => x - y);
  return { services, ballast, records, buildMs, median: times[Math.floor(times.length / 2)], p99: times[Math.floor(times.length * 0.99)], mean, allocated };
}

/** The address of service i's endpoint k. */
const addressOf = (i: number, k: number) => `10.${(i >> 8) & 255}.${i & 255}.${k + 1}`;

/** A federation of one cluster with `services` services of one 3-endpoint slice each. */
function build(services: number) {
  const fed = new Federation(testFederationSettings());
  const c = fed.addCluster({ name: 'c1', region: 'r1', zones: ['z1', 'z2'], addressMode: 'endpoints', gracePeriod: 300 });
  // One port list each for slices and Services, as the kube source interns them.
  const slicePorts = [{ name: 'http', port: 8080, protocol: 'tcp' }];
  const servicePorts = [{ name: 'http', port: 80, protocol: 'tcp' }];
  const slice = (i: number, readyFirst: boolean): SlimEndpointSlice =>
    packSlice({
      namespace: `ns${i % 50}`,
      name: `svc${i}-abc`,
      service: `svc${i}`,
      addressType: 'IPv4',
      ports: slicePorts,
      endpoints: [0, 1, 2].map((k) => ({
        addresses: [addressOf(i, k)],
        ready: k === 0 ? readyFirst : true,
        zone: k === 2 ? 'z2' : 'z1',
      })),
    });
  const svc = (i: number): SlimService => ({
    namespace: `ns${i % 50}`,
    name: `svc${i}`,
    headless: false,
    ports: servicePorts,
    lbAddresses: [],
    lbHostnames: [],
    labels: {},
  });
  seed(c, Array.from({ length: services }, (_, i) => [svc(i), slice(i, true)]).flat());
  fed.rebuild();
  return { fed, c, slice };
}

interface KnotFigures {
  services: number;
  records: number;
  /** Milliseconds per update, Knot's answer included. */
  median: number;
  p90: number;
}

/**
 * Knot DNS with the zone of a `services`-service federation, and the flip of measure() as a
 * dynamic update: service i's first endpoint's address deleted from each of its names that
 * hold it, or added back. Its median time from the update sent to Knot's NOERROR.
 */
async function measureKnot(services: number): Promise<KnotFigures> {
  const { fed } = build(services);
  const zone = fed.snapshot;
  const text = masterFile(zone);
  // "svcI address" -> the A records of service i's names holding that address. Addresses repeat
  // every 65,536 services, so the service's label is part of the key.
  const holders = new Map<string, RR[]>();
  for (const rr of zoneRecords(zone)) {
    if (rr.type !== RRType.A) continue;
    const key = `${rr.name.slice(0, rr.name.indexOf('.'))} ${rr.data as string}`;
    const list = holders.get(key);
    if (list) list.push(rr);
    else holders.set(key, [rr]);
  }
  fed.close();
  const peer = await startKnot({
    origin: zone.domain,
    zoneText: text,
    readyTimeoutMs: 300_000,
    extraConfig: 'acl:\n  - id: update\n    address: 127.0.0.1\n    action: update',
    zoneOptions: '    acl: [update]',
  });
  const socket = createSocket('udp4');
  try {
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    let id = 0;
    const present = new Uint8Array(services).fill(1);
    const flip = async (i: number) => {
      const records = holders.get(`svc${i} ${addressOf(i, 0)}`);
      if (!records?.length) throw new Error(`service ${i}'s first address is in none of its names`);
      present[i] ^= 1;
      // Class NONE deletes that one record (RFC 2136 2.5.4); class IN adds it.
      const updates = records.map((rr) => (present[i] ? rr : { ...rr, ttl: 0, class: RRClass.NONE }));
      id = (id + 1) & 0xffff;
      const query = encodeMessage({ id, opcode: 5, questions: [{ name: zone.domain, type: RRType.SOA, class: RRClass.IN }], authorities: updates });
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`Knot did not answer update ${id} within 30 s`)), 30_000);
        const onMessage = (m: Buffer) => {
          if (m.length < 2 || m.readUInt16BE(0) !== id) return;
          clearTimeout(timer);
          socket.off('message', onMessage);
          resolve(m);
        };
        socket.on('message', onMessage);
        socket.send(query, peer.port, '127.0.0.1');
      });
      const rcode = decodeMessage(reply).rcode;
      if (rcode !== 0) throw new Error(`Knot refused the update of service ${i} (rcode ${rcode}):\n${peer.output()}`);
    };
    for (let k = 0; k < KNOT_WARM_UP; k++) await flip((k * 31) % services);
    const times: number[] = [];
    for (let k = 0; k < KNOT_CHANGES; k++) {
      const s = performance.now();
      await flip((k * 7919) % services);
      times.push(performance.now() - s);
    }
    times.sort((x, y) => x - y);
    return { services, records: zone.recordCount, median: times[Math.floor(times.length / 2)], p90: times[Math.floor(times.length * 0.9)] };
  } finally {
    socket.close();
    await peer.stop();
  }
}

if (process.env.CHANGE_COST_KNOT) {
  process.stdout.write(JSON.stringify(await measureKnot(Number(process.env.CHANGE_COST_KNOT))));
} else if (process.env.CHANGE_COST_CHILD) {
  process.stdout.write(JSON.stringify(await measure(process.env.CHANGE_COST_CHILD)));
} else {
  const self = fileURLToPath(import.meta.url);
  /** Runs this file again with `env` set: one measurement in a process of its own. */
  const child = <T>(what: string, env: Record<string, string>): T => {
    const r = spawnSync(process.execPath, [...process.execArgv, self, String(CHANGES)], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (r.status !== 0) throw new Error(`the ${what} run failed (${r.status ?? r.signal}): ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const run = (size: string) => child<Figures>(`${size}-service`, { CHANGE_COST_CHILD: size });
  const withKnot = KNOT_SIZES.length > 0 && requirePeer('knotd');
  const runKnot = (size: string) => child<KnotFigures>(`Knot ${size}-service`, { CHANGE_COST_KNOT: size });
  const fmt = (n: number) => n.toFixed(1);
  const count = (n: number) => n.toLocaleString('en');
  const label = (f: Figures) => `${count(f.services)} services${f.ballast ? ` beside ${count(f.ballast)} untouched` : ''}`;
  const rounds: Figures[][] = [];
  const knotRounds: KnotFigures[][] = [];
  console.log(`one endpoint change (upsert -> published snapshot), ${CHANGES} changes per run, each size in a process of its own, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}:`);
  for (let r = 0; r < ROUNDS; r++) {
    const round = SIZES.map(run);
    rounds.push(round);
    for (const f of round)
      console.log(`  round ${r + 1}: ${label(f)} (${f.records} records, built in ${fmt(f.buildMs)} ms): median ${fmt(f.median)} us, mean ${fmt(f.mean)} us, p99 ${fmt(f.p99)} us; ${(f.allocated / 1024).toFixed(1)} KiB allocated per change`);
    if (!withKnot) continue;
    const knot = KNOT_SIZES.map(runKnot);
    knotRounds.push(knot);
    for (const k of knot)
      console.log(`  round ${r + 1}: Knot DNS, the same change as a dynamic update, ${count(k.services)} services (${k.records} records): median ${k.median.toFixed(2)} ms, p90 ${k.p90.toFixed(2)} ms over ${KNOT_CHANGES} updates`);
  }
  const span = (xs: number[]) => (Math.min(...xs) === Math.max(...xs) ? xs[0].toFixed(2) : `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`);
  // Every later size against every earlier one: with the default sizes, the heap's share
  // (beside/alone), the whole growth (100,000/1,000) and the zone's own share (100,000/beside).
  for (let i = 1; i < SIZES.length; i++)
    for (let j = 0; j < i; j++) {
      const ratio = (k: keyof Figures) => span(rounds.map((round) => round[i][k] / round[j][k]));
      console.log(`ratio ${label(rounds[0][i])} / ${label(rounds[0][j])}, per round: median ${ratio('median')}, mean ${ratio('mean')}, p99 ${ratio('p99')} (near 1 = the same cost); bytes allocated ${ratio('allocated')} (near 1 = the same work)`);
    }
  // The anchor: Knot's growth over the same sizes, and its cost as a multiple of fedns's.
  for (let i = 1; i < knotRounds[0]?.length; i++)
    for (let j = 0; j < i; j++)
      console.log(`ratio Knot DNS ${count(knotRounds[0][i].services)} / ${count(knotRounds[0][j].services)} services, per round: median ${span(knotRounds.map((round) => round[i].median / round[j].median))}`);
  for (const [k, size] of KNOT_SIZES.entries()) {
    const i = SIZES.indexOf(size);
    if (knotRounds.length)
      console.log(`Knot DNS / fedns, ${count(Number(size))} services, per round: median ${span(rounds.map((round, r) => (knotRounds[r][k].median * 1000) / round[i].median))} (Knot's update over loopback UDP against fedns's change in process)`);
  }
}
