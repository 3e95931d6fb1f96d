// Cost of one endpoint change as the zone grows: the same change (one EndpointSlice of one
// service flipping an endpoint's readiness) applied to a federation of 1,000 and of 100,000
// services, from ClusterState.upsert to the new snapshot being published. The ratio should stay
// near 1: a change's cost must not grow with the zone.
//
// Each size runs in a node process of its own, as a fedns of that size would: sharing one process
// put the small federation's changes in the big one's heap and had the two evict each other from
// the CPU's caches turn by turn. The processes stay up for the whole run and take turns (the
// order turning every round), each waiting idle for its turn, and a ratio is taken between the
// turns of one round, a second or two apart: on a busy machine, whose speed drifts by half from
// one minute to the next, neighbours in time share its conditions. The run reports the median of
// those ratios and the middle half of them.
//
// Two kinds of change are timed in each turn:
// - back to back (BURST changes, the first fifth not counted: the caches are still the other
//   process's): a storm of changes, where the small zone keeps all of its data in the CPU's
//   caches and the big zone only the top of its tables;
// - on cold caches (COLD_CHANGES changes, each after a sweep of 64 MiB of memory): a lone change
//   reaching a server whose caches hold other work, as most changes do; its code and V8's are
//   read from memory too, at every size alike.
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
// one at a time (KNOT_CHANGES updates per size and round, KNOT_ROUNDS rounds), after fedns's turns.
// The floor: a size written "floor:1000" does not run fedns, but the least that any zone model
// has to do for the same change in V8: the service's key made from the event's strings and looked
// up in one persistent map (src/zone/pmap.ts) holding one entry per service, its answers (every
// name of the service as encoded wire bytes, in one buffer) read and written anew with the
// endpoint's readiness flipped, the new entry set in a new version of the map, and the old and new
// entries kept for a transfer's delta. Its growth from 1,000 to 100,000 services is what the
// memory of a bigger zone costs a change whatever the model: fedns's own growth can come down to
// it, and not below.
// The per-name floor: a size written "names:1000" is the floor's least work for a zone held as
// fedns holds it, one map entry per name: NAMES_PER_SERVICE entries for each service, of which a
// change writes CHANGED_NAMES anew (each entry's answer its own buffer), in one new version of
// the map. Its growth is what a change costs in that model before any of fedns's bookkeeping.
// usage: node dist/benchmarks/change-cost.js [changes=20000] [rounds=20] [sizes=1000,1000+100000,100000]
// (floor: node dist/benchmarks/change-cost.js 20000 20 1000,100000,floor:1000,floor:100000,names:1000,names:100000)
// (CHANGE_COST_ROUNDS=1 prints each round's medians)
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import { objectKey, packSlice, type SlimEndpointSlice, type SlimService } from '../src/cluster/objects.js';
import { Federation } from '../src/federation/federation.js';
import { RRClass, RRType } from '../src/wire/constants.js';
import { decodeMessage, encodeMessage } from '../src/wire/message.js';
import type { RR } from '../src/wire/records.js';
import { masterFile, zoneRecords } from '../src/zone/masterfile.js';
import { hashKey } from '../src/zone/name-hash.js';
import { PersistentMap } from '../src/zone/pmap.js';
import { seed, testFederationSettings } from '../test/support/federation.js';
import { requirePeer, startKnot } from '../test/support/peers.js';

/** Changes timed back to back per size, over all its turns. */
const CHANGES = Number(process.argv[2] ?? 20000);
const ROUNDS = Number(process.argv[3] ?? 20);
/** "n" or "n+ballast": n services changed, beside a federation of `ballast` services never touched. */
const SIZES = (process.argv[4] ?? '1000,1000+100000,100000').split(',');
const BURST = Math.max(20, Math.round(CHANGES / ROUNDS));
/** Changes at the start of a back-to-back burst not counted: the caches are still the other process's. */
const SETTLING = Math.ceil(BURST / 5);
/** Changes timed on cold caches per size and turn: each costs a sweep of FLUSH_BYTES first. */
const COLD_BURST = Number(process.env.COLD_CHANGES ?? 100);
/** Memory swept before a cold change: more than the last-level cache (32 MiB of L3 on the machines measured). */
const FLUSH_BYTES = 64 << 20;
const WARM_UP = 3000;
/** Changes of the allocation count, per size. */
const SAMPLED = 2000;
/** Knot's updates per size and round (after KNOT_WARM_UP): each costs milliseconds, not microseconds. */
const KNOT_CHANGES = Number(process.env.KNOT_CHANGES ?? 40);
const KNOT_ROUNDS = Number(process.env.KNOT_ROUNDS ?? 3);
const KNOT_WARM_UP = 5;
/** The floors (see the top of this file), by the prefix of their sizes. */
const FLOORS = { 'floor:': 'the floor', 'names:': 'the per-name floor' } as const;
/** The floor a size is written for ('floor:1000', 'names:1000'), if any. */
const floorOf = (size: string) => (Object.keys(FLOORS) as (keyof typeof FLOORS)[]).find((p) => size.startsWith(p));
/** Sizes Knot runs: those without a ballast, and not the floors. */
const KNOT_SIZES = SIZES.filter((s) => !s.includes('+') && !floorOf(s));

/** What a size's process says once it is built and warm. */
interface Built {
  services: number;
  /** The floor model this size runs instead of fedns ('': fedns). */
  floor: string;
  /** Services of the untouched federation beside it (0: none). */
  ballast: number;
  records: number;
  buildMs: number;
}

/**
 * Parent to child: time a burst of changes (`cold`: each after a sweep of memory that leaves the
 * CPU's caches holding none of the zone), or count the bytes of `allocated` changes and end.
 */
type Request = { burst: number; cold: boolean } | { allocated: number };
/** Child to parent, in turn: Built once, then the burst's times (us), then the bytes per change. */
type Reply = Built | { times: number[] } | { allocated: number };

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
 * One size's process: builds a federation of `services` services (after one of `ballast`
 * services that stays untouched, if any), warms the change's path up, says so, then times the
 * bursts of changes its parent asks for, until it asks for the allocation count.
 */
function serve(size: string): void {
  const prefix = floorOf(size);
  const floor = prefix ? FLOORS[prefix] : '';
  const [services, ballast = 0] = size.slice(prefix?.length ?? 0).split('+').map(Number);
  const untouched = ballast ? build(ballast) : undefined;
  const t0 = performance.now();
  const { fed, flip, records } = prefix ? buildFloor(services, prefix === 'names:') : buildChanging(services);
  const buildMs = performance.now() - t0;
  // Warm-up: until the JIT has compiled the change's path (a process of its own starts cold).
  for (let i = 0; i < WARM_UP; i++) flip((i * 31) % services);
  const sweep = new Uint32Array(FLUSH_BYTES / 4);
  // The build's and the warm-up's garbage, collected now (CHILD_FLAGS: --expose-gc), not in a
  // timed turn: left to the collector, its marking ran in steps inside the big size's first changes.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run without --expose-gc: the build\'s garbage would be collected in a timed turn');
  gc();
  let sink = 0;
  let next = 0;
  const send = (reply: Reply) => process.send!(reply);
  process.on('message', (m: Request) => {
    if ('burst' in m) {
      const times = new Array<number>(m.burst);
      for (let k = 0; k < m.burst; k++) {
        // One read per 64-byte line, and a write so that no line is kept as it was.
        if (m.cold) for (let w = 0; w < sweep.length; w += 16) sink = (sink + sweep[w]++) | 0;
        const s = performance.now();
        flip((next++ * 7919) % services);
        times[k] = (performance.now() - s) * 1000;
      }
      send({ times });
      if (sink === 0.5) console.log('unreachable: keeps the sweep from being optimised away');
      return;
    }
    void allocatedPerCall(() => flip((next++ * 4099) % services), m.allocated).then((allocated) => {
      fed?.close();
      untouched?.fed.close();
      send({ allocated });
      process.disconnect();
    });
  });
  send({ services, floor, ballast, records, buildMs });
}

/** A federation of `services` services, and the change: one service's first endpoint's readiness flipped. */
function buildChanging(services: number) {
  const { fed, c, slice } = build(services);
  // Each service's own readiness flag, so every flip really changes that service.
  const ready = new Uint8Array(services).fill(1);
  const flip = (i: number) => {
    ready[i] ^= 1;
    c.upsert('EndpointSlice', slice(i, ready[i] === 1));
    c.flush();
    fed.rebuild();
  };
  return { fed, flip, records: fed.snapshot.recordCount };
}

/** The names a 3-endpoint service of build() answers A queries at, each with its addresses. */
const FLOOR_NAMES = 14;
/** Bytes of one name's answer: its owner name, then three A records (compressed owner, type, class, TTL, length, address). */
const FLOOR_NAME_BYTES = 48 + 3 * 16;

/** A service of the floor model: its key and hash (pmap.ts), its endpoints' readiness, its answers' wire bytes. */
interface FloorService {
  readonly key: string;
  readonly hash: number;
  readonly ready: number;
  readonly wire: Uint8Array;
}

/**
 * Entries of a service in the per-name floor: the names of a service of build() in fedns's zone
 * (9.3 per service with the empty non-terminals), and those one change writes anew (fedns's zone
 * map takes 3 writes for the flip of buildChanging).
 */
const NAMES_PER_SERVICE = 9;
const CHANGED_NAMES = 3;

/**
 * The floor model (see the top of this file) of `services` services, and the same change; with
 * `perName`, the per-name floor: NAMES_PER_SERVICE entries per service, CHANGED_NAMES written per change.
 */
function buildFloor(services: number, perName: boolean) {
  const entries = perName ? NAMES_PER_SERVICE : 1;
  const written = perName ? CHANGED_NAMES : 1;
  /** Bytes of an entry's answers: one name's, or every name's of the service. */
  const bytes = perName ? FLOOR_NAME_BYTES : FLOOR_NAMES * FLOOR_NAME_BYTES;
  // Entry n of service i: its service's key, and a label of its own past the first.
  const keyOf = (i: number, n: number) => (n === 0 ? objectKey(`ns${i % 50}`, `svc${i}`) : objectKey(`ns${i % 50}`, `svc${i}.${n}`));
  const make = (key: string, ready: number, wire: Uint8Array): FloorService => ({ key, hash: hashKey(key), ready, wire });
  const draft = PersistentMap.empty<FloorService>().edit();
  for (let i = 0; i < services; i++)
    for (let n = 0; n < entries; n++) {
      const wire = new Uint8Array(bytes);
      for (let b = 0; b < wire.length; b++) wire[b] = (i + n + b) & 0xff;
      draft.set(make(keyOf(i, n), 0b111, wire));
    }
  let map = draft.done();
  // The transfer's delta: the entries each change replaced, and their successors.
  const journal: FloorService[] = new Array(2 * 1024);
  let at = 0;
  const flip = (i: number) => {
    const next = map.edit();
    for (let n = 0; n < written; n++) {
      // The event's strings, as a watch event brings them: a key made anew, hashed anew.
      const old = map.get(keyOf(i, n))!;
      const ready = old.ready ^ 1;
      // The entry's answers written anew from the old ones, the first endpoint's address in or out of each name's.
      const wire = new Uint8Array(old.wire.length);
      wire.set(old.wire);
      for (let b = 48 + 15; b < wire.length; b += FLOOR_NAME_BYTES) wire[b] ^= ready;
      const made = make(old.key, ready, wire);
      next.set(made);
      journal[at] = old;
      journal[at + 1] = made;
      at = (at + 2) % journal.length;
    }
    map = next.done();
  };
  return { fed: undefined, flip, records: services * entries * (bytes / FLOOR_NAME_BYTES) * 3 };
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

/**
 * The flags of a size's process. Its collector works in its own turn, on its own thread: none
 * of it runs while another size is timed, sharing the machine's two cores and its caches. The
 * build's garbage is collected before the first turn, and no memory reducer shrinks the heap of
 * a process that waits for its turn (each would be collected in a later turn, an old-generation
 * sweep that one size pays and not the others).
 */
const CHILD_FLAGS = ['--single-threaded-gc', '--expose-gc', '--no-memory-reducer'];

/** A size's process, asked one thing at a time. */
class Sizer {
  private readonly proc: ChildProcess;
  private waiting?: { resolve: (r: Reply) => void; reject: (e: Error) => void };

  constructor(readonly size: string, self: string) {
    this.proc = fork(self, [], { execArgv: [...process.execArgv, ...CHILD_FLAGS], env: { ...process.env, CHANGE_COST_CHILD: size }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (m: Reply) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.resolve(m);
    });
    this.proc.on('exit', (code, signal) => {
      this.ended = new Error(`the ${size}-service run ended (${code ?? signal}) before it answered`);
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(this.ended);
    });
    // A send to a process that has ended: its 'exit' says why (no unhandled 'error' event).
    this.proc.on('error', (e) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(this.ended ?? e);
    });
  }

  /** Why the process ended, once it has. */
  private ended?: Error;

  /** The next reply (`request` sent first, if any). */
  next<T extends Reply>(request?: Request): Promise<T> {
    if (this.ended) return Promise.reject(this.ended);
    return new Promise<T>((resolve, reject) => {
      this.waiting = { resolve: resolve as (r: Reply) => void, reject };
      if (request) this.proc.send(request);
    });
  }
}

const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
/**
 * The value at fraction q of `xs` sorted (0.5: the median), between its neighbours as far as q
 * falls between them: of 20 rounds' ratios, not the upper one of the middle two, and of 4 not
 * the largest as the middle half's top.
 */
const quantile = (xs: number[], q: number) => {
  const s = sorted(xs);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return lo + 1 < s.length ? s[lo] + (s[lo + 1] - s[lo]) * (at - lo) : s[lo];
};
const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

if (process.env.CHANGE_COST_KNOT) {
  process.stdout.write(JSON.stringify(await measureKnot(Number(process.env.CHANGE_COST_KNOT))));
} else if (process.env.CHANGE_COST_CHILD) {
  serve(process.env.CHANGE_COST_CHILD);
} else {
  const self = fileURLToPath(import.meta.url);
  const fmt = (n: number) => n.toFixed(1);
  const count = (n: number) => n.toLocaleString('en');
  const label = (b: Built) => `${b.floor ? `${b.floor}, ` : ''}${count(b.services)} services${b.ballast ? ` beside ${count(b.ballast)} untouched` : ''}`;
  // One process per size, built one after another so that each build has the machine to itself.
  const sizers: Sizer[] = [];
  const built: Built[] = [];
  for (const size of SIZES) {
    const sizer = new Sizer(size, self);
    sizers.push(sizer);
    built.push(await sizer.next<Built>());
  }
  console.log(
    `one endpoint change (upsert -> published snapshot), each size in a process of its own, taking turns for ${ROUNDS} rounds; in its turn, ${BURST} changes back to back (the first ${SETTLING} not counted), then ${COLD_BURST} changes each on cold caches (after a ${FLUSH_BYTES >> 20} MiB sweep of memory):`,
  );
  // hot[i][r], cold[i][r]: size i's counted times in round r.
  const hot: number[][][] = SIZES.map(() => []);
  const cold: number[][][] = SIZES.map(() => []);
  for (let r = 0; r < ROUNDS; r++)
    for (let k = 0; k < SIZES.length; k++) {
      const i = (r + k) % SIZES.length;
      hot[i].push((await sizers[i].next<{ times: number[] }>({ burst: BURST, cold: false })).times.slice(SETTLING));
      if (COLD_BURST > 0) cold[i].push((await sizers[i].next<{ times: number[] }>({ burst: COLD_BURST, cold: true })).times);
    }
  const allocated: number[] = [];
  for (const sizer of sizers) allocated.push((await sizer.next<{ allocated: number }>({ allocated: SAMPLED })).allocated);
  const spread = (xs: number[]) => `${quantile(xs, 0.5).toFixed(2)} (middle half ${quantile(xs, 0.25).toFixed(2)}-${quantile(xs, 0.75).toFixed(2)})`;
  for (const [mode, times] of [
    ['back to back', hot],
    ['on cold caches', cold],
  ] as const) {
    if (times[0].length === 0) continue;
    console.log(`changes ${mode}:`);
    for (const [i, b] of built.entries()) {
      const all = times[i].flat();
      console.log(`  ${label(b)} (${b.records} records, built in ${fmt(b.buildMs)} ms): median ${fmt(quantile(all, 0.5))} us, mean ${fmt(meanOf(all))} us, p99 ${fmt(quantile(all, 0.99))} us over ${all.length} changes`);
      if (process.env.CHANGE_COST_ROUNDS) console.log(`    round by round: median ${times[i].map((t) => fmt(quantile(t, 0.5))).join(' ')}`);
    }
    // Every later size against every earlier one, round by round: with the default sizes, the
    // heap's share (beside/alone), the whole growth (100,000/1,000) and the zone's own share
    // (100,000/beside).
    // The floor's sizes only against each other: its extra in microseconds is what a bigger zone
    // costs any model, to hold against fedns's.
    for (let i = 1; i < SIZES.length; i++)
      for (let j = 0; j < i; j++) {
        if (built[i].floor !== built[j].floor) continue;
        const ratios = (f: (xs: number[]) => number) => times[i].map((t, r) => f(t) / f(times[j][r]));
        const extra = times[i].map((t, r) => quantile(t, 0.5) - quantile(times[j][r], 0.5));
        console.log(
          `  ratio ${label(built[i])} / ${label(built[j])}, over ${ROUNDS} rounds: median ${spread(ratios((xs) => quantile(xs, 0.5)))}, mean ${spread(ratios(meanOf))} (near 1 = the same cost); the median's extra ${fmt(quantile(extra, 0.5))} us (middle half ${fmt(quantile(extra, 0.25))}-${fmt(quantile(extra, 0.75))})`,
        );
      }
  }
  for (const [i, b] of built.entries()) {
    const first = built.findIndex((a) => a.floor === b.floor);
    console.log(`bytes allocated per change, ${label(b)}: ${(allocated[i] / 1024).toFixed(1)} KiB (${(allocated[i] / allocated[first]).toFixed(2)} x the first size's of its model: near 1 = the same work)`);
  }
  // The anchor: Knot's growth over the same sizes, and its cost as a multiple of fedns's.
  if (KNOT_ROUNDS > 0 && KNOT_SIZES.length > 0 && requirePeer('knotd')) {
    /** Runs this file again to time Knot at one size: a process of its own. */
    const runKnot = (size: string): KnotFigures => {
      const r = spawnSync(process.execPath, [...process.execArgv, self], { env: { ...process.env, CHANGE_COST_KNOT: size }, encoding: 'utf8', maxBuffer: 1 << 20 });
      if (r.status !== 0) throw new Error(`the Knot ${size}-service run failed (${r.status ?? r.signal}): ${r.stderr}`);
      return JSON.parse(r.stdout) as KnotFigures;
    };
    const knotRounds: KnotFigures[][] = [];
    for (let r = 0; r < KNOT_ROUNDS; r++) {
      const knot = KNOT_SIZES.map(runKnot);
      knotRounds.push(knot);
      for (const k of knot)
        console.log(`  round ${r + 1}: Knot DNS, the same change as a dynamic update, ${count(k.services)} services (${k.records} records): median ${k.median.toFixed(2)} ms, p90 ${k.p90.toFixed(2)} ms over ${KNOT_CHANGES} updates`);
    }
    const span = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
    for (let i = 1; i < KNOT_SIZES.length; i++)
      for (let j = 0; j < i; j++)
        console.log(`ratio Knot DNS ${count(knotRounds[0][i].services)} / ${count(knotRounds[0][j].services)} services, per round: median ${span(knotRounds.map((round) => round[i].median / round[j].median))}`);
    for (const [k, size] of KNOT_SIZES.entries()) {
      const all = hot[SIZES.indexOf(size)].flat();
      console.log(`Knot DNS / fedns, ${count(Number(size))} services, per round: median ${span(knotRounds.map((round) => (round[k].median * 1000) / quantile(all, 0.5)))} (Knot's update over loopback UDP against fedns's change in process)`);
    }
  }
}
