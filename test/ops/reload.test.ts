/**
 * Reloads never cost an answer. Clients ask without pause (UDP, one asker per service) while the
 * configuration is reloaded in every way: TTL, health, address mode (global and per cluster),
 * selection, resolvers, listen addresses (added, removed, moved, and one that cannot open), the
 * domain. Every reply is checked for the full answer the configuration in force gives, and the
 * member clusters (fake API servers) are never listed again: no reload restarts a source.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig, type Config } from '../../src/config/load.js';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery, type Message } from '../../src/wire/message.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { freePort } from '../support/peers.js';
import { eventuallyWith, kubeHarness, QUICK_TIMING, serviceExport, slice, svc, sleep, useKubeTiming, type Running } from '../support/kube-harness.js';

useKubeTiming(QUICK_TIMING);
const h = kubeHarness('fedns-reload-');
const eventually = eventuallyWith({ timeoutMs: 8000, pollMs: 20 });

/** Where each service runs: load-balancer address, pod address, ServiceExport or not. */
type Copy = { lb: string; pod: string; exported: boolean };
const SERVICES: Record<string, Partial<Record<'alpha' | 'bravo', Copy>>> = {
  web: { alpha: { lb: '192.0.2.1', pod: '10.1.0.1', exported: true }, bravo: { lb: '198.51.100.1', pod: '10.2.0.1', exported: true } },
  api: { alpha: { lb: '192.0.2.2', pod: '10.1.0.2', exported: true } },
  db: { bravo: { lb: '198.51.100.3', pod: '10.2.0.3', exported: false } },
};

/** The settings the test varies; everything else stays as `raw` writes it. */
interface Settings {
  domain: string;
  listen: number[];
  ttl: number;
  health: { gracePeriod: number; panicMode: boolean };
  addressMode: 'loadBalancer' | 'endpoints';
  bravoMode?: 'loadBalancer' | 'endpoints';
  selection: 'all' | 'exported';
  resolvers: string[];
  /** Which of bravo's two kubeconfig files (same API server) its source reads. */
  bravoKubeconfig: 'bravo' | 'bravo2';
}

interface Expected {
  rcode: number;
  addresses: string[];
  ttl?: number;
}

/** The full answer `settings` give for `qname` A. */
function expected(s: Settings, qname: string): Expected {
  const suffix = `.shop.fed.${s.domain}`;
  if (!qname.endsWith(`.${s.domain}`)) return { rcode: Rcode.REFUSED, addresses: [] };
  const name = qname.slice(0, -suffix.length);
  const addresses: string[] = [];
  for (const [cluster, copy] of Object.entries(SERVICES[name] ?? {})) {
    if (!copy || (s.selection === 'exported' && !copy.exported)) continue;
    const mode = (cluster === 'bravo' ? s.bravoMode : undefined) ?? s.addressMode;
    addresses.push(mode === 'endpoints' ? copy.pod : copy.lb);
  }
  if (!addresses.length) return { rcode: Rcode.NXDOMAIN, addresses: [] };
  return { rcode: Rcode.NOERROR, addresses: addresses.sort(), ttl: s.ttl };
}

function got(m: Message): Expected {
  const a = m.answers.filter((r) => r.type === RRType.A);
  const ttls = new Set(a.map((r) => r.ttl));
  return { rcode: m.rcode, addresses: a.map((r) => r.data as string).sort(), ...(ttls.size === 1 ? { ttl: [...ttls][0] } : ttls.size ? { ttl: -1 } : {}) };
}

/** One configuration and the time it was in force (`to` undefined: still is). */
interface Phase {
  settings: Settings;
  from: number;
  to?: number;
}

interface Failure {
  qname: string;
  port: number;
  what: string;
  phases: string;
}

/** Asks for one service without pause, to a listen address in force, checking every reply. */
class Asker {
  answered = 0;
  private readonly sock: UdpSocket = createSocket('udp4');
  private id = 0;
  private waiting?: { id: number; done: (m: Message) => void };
  private stopped = false;
  loop?: Promise<void>;

  constructor(
    private readonly service: string,
    private readonly phases: Phase[],
    private readonly failures: Failure[],
    /** Answers per phase index. */
    private readonly perPhase: number[],
  ) {
    this.sock.on('message', (buf) => {
      let m: Message;
      try {
        m = decodeMessage(buf);
      } catch {
        return;
      }
      if (this.waiting && m.id === this.waiting.id) this.waiting.done(m);
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', r));
    this.loop = this.run();
  }

  private ask(qname: string, port: number): Promise<Message | undefined> {
    this.id = (this.id % 0xffff) + 1;
    const id = this.id;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting = undefined;
        resolve(undefined);
      }, 2000);
      this.waiting = {
        id,
        done: (m) => {
          clearTimeout(t);
          this.waiting = undefined;
          resolve(m);
        },
      };
      this.sock.send(encodeQuery(qname, RRType.A, { id }), port, '127.0.0.1');
    });
  }

  private async run(): Promise<void> {
    let n = 0;
    while (!this.stopped) {
      // The configuration in force now; during a reload (the last phase began, its predecessor
      // has not ended), the address both have if any, else the old one.
      const current = this.phases.at(-1)!;
      const before = this.phases.at(-2);
      const reloading = before !== undefined && before.to === undefined;
      const ports = reloading ? current.settings.listen.filter((p) => before.settings.listen.includes(p)) : current.settings.listen;
      const from = reloading && ports.length === 0 ? before.settings : current.settings;
      const port = (ports.length ? ports : from.listen)[n++ % (ports.length || from.listen.length)];
      const qname = `${this.service}.shop.fed.${from.domain}`;
      const sent = Date.now();
      const m = await this.ask(qname, port);
      const received = Date.now();
      // Any configuration in force at some moment between sending and receiving will do.
      const inForce = this.phases.map((p, i) => ({ p, i })).filter(({ p }) => p.from <= received && (p.to === undefined || p.to >= sent));
      const describe = inForce.map(({ p, i }) => `phase ${i}: ${JSON.stringify(expected(p.settings, qname))}`).join(" or ");
      if (!m) {
        this.failures.push({ qname, port, what: 'no answer within 2 s', phases: describe });
        continue;
      }
      const answer = got(m);
      const match = inForce.find(({ p }) => JSON.stringify(expected(p.settings, qname)) === JSON.stringify(answer));
      if (!match) this.failures.push({ qname, port, what: JSON.stringify(answer), phases: describe });
      else this.perPhase[match.i] = (this.perPhase[match.i] ?? 0) + 1;
      this.answered++;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.sock.close();
  }
}

describe('reloads of every kind under continuous queries', () => {
  let alpha: FakeApiServer;
  let bravo: FakeApiServer;
  let f: Running | undefined;
  const holders: Server[] = [];

  beforeAll(async () => {
    [alpha, bravo] = await Promise.all([FakeApiServer.start({ bookmarkIntervalMs: 200 }), FakeApiServer.start({ bookmarkIntervalMs: 200 })]);
    for (const [name, where] of Object.entries(SERVICES)) {
      for (const [cluster, copy] of Object.entries(where)) {
        const server = cluster === 'alpha' ? alpha : bravo;
        server.apply(svc('shop', name, [copy.lb]));
        server.apply(slice('shop', name, [{ ip: copy.pod }]));
        if (copy.exported) server.apply(serviceExport('shop', name));
      }
    }
  });

  afterAll(async () => {
    await f?.stop();
    for (const s of holders) s.close();
    await Promise.all([alpha?.stop(), bravo?.stop()]);
  });

  it('answers every query in full, with the answer of the configuration in force, and never re-lists a cluster', async () => {
    const files = {
      alpha: h.writeKubeconfig('alpha', alpha.kubeconfig()),
      bravo: h.writeKubeconfig('bravo', bravo.kubeconfig()),
      bravo2: h.writeKubeconfig('bravo2', bravo.kubeconfig()),
    };
    const raw = (s: Settings) => ({
      domain: s.domain,
      federation: 'fed',
      listen: s.listen.map((p) => `127.0.0.1:${p}`),
      nameservers: [{ name: 'ns1.example.org.', addresses: [] }],
      ops: { listen: null },
      ttl: { default: s.ttl },
      health: s.health,
      addressMode: s.addressMode,
      selection: { policy: s.selection },
      hostnames: { resolvers: s.resolvers },
      clusters: [
        { name: 'alpha', region: 'r1', source: { type: 'kube', kubeconfig: files.alpha } },
        { name: 'bravo', region: 'r2', ...(s.bravoMode ? { addressMode: s.bravoMode } : {}), source: { type: 'kube', kubeconfig: files[s.bravoKubeconfig] } },
      ],
    });
    const build = (s: Settings): Config => buildConfig(raw(s), join(h.dir(), 'fedns.yaml'), h.dir());
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    let s: Settings = {
      domain: 'example.com.',
      listen: [p1],
      ttl: 30,
      health: { gracePeriod: 60, panicMode: true },
      addressMode: 'loadBalancer',
      selection: 'all',
      resolvers: [],
      bravoKubeconfig: 'bravo',
    };
    f = await h.startRaw(raw(s));
    const running = f;
    await eventually(() => running.health('alpha') + running.health('bravo'), (v) => v === 'livelive', 'both clusters live');
    await eventually(() => running.answer('web.shop.fed.example.com.'), (v) => v.length === 2, 'web answering from both clusters');
    const lists = () => [alpha, bravo].map((a) => a.requestLog.filter((r) => r.verb === 'list' && (r.kind === 'Service' || r.kind === 'EndpointSlice')).length);
    const listsAtStart = lists();
    const healthChanges = f.history.length;

    const phases: Phase[] = [{ settings: s, from: 0 }];
    const failures: Failure[] = [];
    const perPhase: number[] = [];
    const askers = Object.keys(SERVICES).map((name) => new Asker(name, phases, failures, perPhase));
    for (const a of askers) await a.start();
    const serials: number[] = [];
    let serialBeforeHealth = 0;
    let serialAfterHealth = -1;
    /** Reloads with `next` and lets the clients ask under it for a while. */
    const reload = async (change: Partial<Settings>) => {
      const next: Settings = { ...s, ...change };
      const phase: Phase = { settings: next, from: Date.now() };
      phases.push(phase);
      await running.fedns.reload(build(next));
      phases.at(-2)!.to = Date.now();
      s = next;
      serials.push(running.fedns.federation.snapshot.serial);
      await sleep(300);
    };
    try {
      await sleep(300);
      await reload({ ttl: 45 });
      serialBeforeHealth = running.fedns.federation.snapshot.serial;
      await reload({ health: { gracePeriod: 120, panicMode: false } });
      serialAfterHealth = running.fedns.federation.snapshot.serial;
      await reload({ addressMode: 'endpoints' });
      await reload({ bravoMode: 'loadBalancer' });
      expect(alpha.openWatches('ServiceExport')).toBe(0);
      await reload({ selection: 'exported' });
      // The ServiceExport watch runs on the existing sources, and stops again with the policy.
      await eventually(() => alpha.openWatches('ServiceExport') + bravo.openWatches('ServiceExport'), (n) => n === 2, 'ServiceExport watches open');
      await reload({ selection: 'all', addressMode: 'loadBalancer', bravoMode: undefined });
      await eventually(() => alpha.openWatches('ServiceExport') + bravo.openWatches('ServiceExport'), (n) => n === 0, 'ServiceExport watches closed');
      await reload({ resolvers: ['127.0.0.1:9'] });
      await reload({ listen: [p1, p2] });
      await reload({ listen: [p2] });
      // An address that cannot open (another socket holds it): rejected, nothing changes.
      const holder = createServer();
      holders.push(holder);
      const taken = await freePort();
      await new Promise<void>((r) => holder.listen(taken, '127.0.0.1', r));
      const failed = build({ ...s, listen: [p2, taken], ttl: 99 });
      await expect(running.fedns.reload(failed)).rejects.toThrow(new RegExp(`127\\.0\\.0\\.1:${taken}`));
      await sleep(300);
      await reload({ listen: [p3] });
      await reload({ domain: 'example.net.' });
      await reload({ ttl: 20, selection: 'exported' });
      // bravo's source settings change: a new source reads it, its data served meanwhile.
      expect(lists()).toEqual(listsAtStart);
      await reload({ bravoKubeconfig: 'bravo2' });
      await eventually(() => lists()[1], (n) => n >= listsAtStart[1] + 2, 'bravo listed by its new source');
      await sleep(300);
    } finally {
      for (const a of askers) await a.stop();
    }
    const answered = askers.reduce((n, a) => n + a.answered, 0);
    expect(failures.slice(0, 10), `${failures.length} of ${answered} queries without the full answer`).toEqual([]);
    // Every configuration was asked under, many times.
    for (let i = 0; i < phases.length; i++) expect(perPhase[i] ?? 0, `answers under ${JSON.stringify(phases[i].settings)}`).toBeGreaterThan(10);
    // No cluster left live; only bravo's new source listed again.
    expect(f.history.slice(healthChanges)).toEqual([]);
    expect(lists()[0]).toBe(listsAtStart[0]);
    expect(new Set(serials).size).toBeGreaterThan(1);
    // A health reload changes nothing in the zone: no new serial, so secondaries get no transfer.
    expect(serialAfterHealth).toBe(serialBeforeHealth);
  }, 60_000);

  it('a region dropped from the configuration is learned from the nodes, the cluster live and answering throughout', async () => {
    const server = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
    let g: Running | undefined;
    try {
      server.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { 'topology.kubernetes.io/region': 'r9' } } });
      server.apply(svc('shop', 'web', ['192.0.2.9']));
      server.apply(slice('shop', 'web', [{ ip: '10.9.0.1' }]));
      const kubeconfig = h.writeKubeconfig('solo', server.kubeconfig());
      const raw = (region?: string) => ({
        listen: ['127.0.0.1:0'],
        ops: { listen: null },
        clusters: [{ name: 'solo', ...(region ? { region } : {}), source: { type: 'kube', kubeconfig } }],
      });
      g = await h.startRaw(raw('r1'));
      const running = g;
      await eventually(() => running.answer('web.shop.fed.svc.r1.example.com.'), (v) => JSON.stringify(v) === '["192.0.2.9"]', 'the configured region');
      const changes = g.history.length;
      await g.fedns.reload(buildConfig(raw(), join(h.dir(), 'fedns.yaml'), h.dir()));
      for (let i = 0; i < 50; i++) expect(await running.answer('web.shop.fed.example.com.')).toEqual(['192.0.2.9']);
      await eventually(() => running.answer('web.shop.fed.svc.r9.example.com.'), (v) => JSON.stringify(v) === '["192.0.2.9"]', 'the region of the nodes');
      expect(g.history.slice(changes)).toEqual([]);
    } finally {
      await g?.stop();
      await server.stop();
    }
  });

  it('an address removed by one reload can be listened on again by the next, at once', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const raw = (ports: number[]) => ({ listen: ports.map((p) => `127.0.0.1:${p}`), ops: { listen: null }, clusters: [] });
    const g = await h.startRaw(raw([p1]));
    try {
      await g.fedns.reload(buildConfig(raw([p2]), join(h.dir(), 'fedns.yaml'), h.dir()));
      await g.fedns.reload(buildConfig(raw([p1]), join(h.dir(), 'fedns.yaml'), h.dir()));
      expect(g.fedns.dns.addresses().map((a) => a.port)).toEqual([p1]);
      const sock = createSocket('udp4');
      const reply = await new Promise<Message | undefined>((resolve) => {
        const t = setTimeout(() => resolve(undefined), 2000);
        sock.on('message', (m) => (clearTimeout(t), resolve(decodeMessage(m))));
        sock.send(encodeQuery('example.com.', RRType.SOA), p1, '127.0.0.1');
      });
      sock.close();
      expect(reply?.answers[0]?.type).toBe(RRType.SOA);
    } finally {
      await g.stop();
    }
  });
});
