// The fault matrix: every scripted API-server fault, injected at least 20 times while a client
// queries every existing name over UDP without pause. No name that exists may ever answer
// NXDOMAIN or an empty answer, and the cluster must come back to `live` once the fault ends.
// Then expiry: a cluster unreachable past its grace period stops contributing (panic mode aside).
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { KubeSourceOptions } from '../../src/cluster/kube.js';
import { Rcode, RRType } from '../../src/wire/constants.js';
import type { Message } from '../../src/wire/message.js';
import { FakeApiServer, type FaultHandle } from '../support/fake-apiserver.js';
import { aRecords, eventuallyWith, kubeHarness, publish, rcodeText, same, sleep, unpublish, useKubeTiming, type Running } from '../support/kube-harness.js';

// ---- helpers ----------------------------------------------------------------------------

const TIMING: KubeSourceOptions = {
  idleLimitMs: 300,
  restartIntervalMs: 50,
  staleAfterMs: 3000,
  requestTimeoutMs: 2000,
  watchTimeoutSeconds: 30,
  stormRestarts: 8,
  stormWindowMs: 1000,
  missingKindRecheckMs: 1000,
};

useKubeTiming(TIMING);

const { startFedns } = kubeHarness('fedns-kube-faults-');
const eventually = eventuallyWith({ timeoutMs: 10_000, pollMs: 10 });

const fqdn = (svcName: string, ns = 'f') => `${svcName}.${ns}.fed.example.com.`;

/** Queries every name in turn, one query in flight, and records every answer that is not the expected one. */
class QueryLoop {
  queries = 0;
  timeouts = 0;
  readonly bad: string[] = [];
  private running = true;
  private done?: Promise<void>;

  constructor(
    private readonly f: Running,
    private readonly expected: Map<string, string[]>,
  ) {}

  start(): void {
    this.done = (async () => {
      while (this.running) {
        for (const [name, want] of this.expected) {
          if (!this.running) break;
          const m = await this.f.dns.query(name, RRType.A, 2000);
          this.queries++;
          if (!m) {
            this.timeouts++;
            continue;
          }
          const got = m.rcode === Rcode.NOERROR ? aRecords(m) : rcodeText(m.rcode);
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            this.bad.push(`${new Date().toISOString()} ${name}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)} (east ${this.f.health('east')})`);
          }
        }
        await sleep(1);
      }
    })();
  }

  mark(): { queries: number; timeouts: number; bad: number } {
    return { queries: this.queries, timeouts: this.timeouts, bad: this.bad.length };
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

async function hits(server: FakeApiServer, h: FaultHandle, n: number, what: string, timeoutMs = 20_000): Promise<void> {
  await server.waitFor(() => h.hits >= n, timeoutMs, `${n} × ${what}`);
}

// ---- the fault matrix -------------------------------------------------------------------

describe('kube source: fault matrix under continuous queries', () => {
  let east: FakeApiServer;
  let west: FakeApiServer;
  let f: Running;
  let loop: QueryLoop;
  let mark: ReturnType<QueryLoop['mark']>;
  let historyMark = 0;
  let probe = 0;
  const expected = new Map<string, string[]>();

  beforeAll(async () => {
    [east, west] = await Promise.all([FakeApiServer.start({ bookmarkIntervalMs: 100 }), FakeApiServer.start({ bookmarkIntervalMs: 100 })]);
    for (let i = 0; i < 5; i++) {
      publish(east, 'f', `e${i}`, `192.0.2.${i + 1}`, `10.1.0.${i + 1}`);
      expected.set(fqdn(`e${i}`), [`192.0.2.${i + 1}`]);
    }
    for (let i = 0; i < 3; i++) {
      publish(west, 'f', `w${i}`, `198.51.100.${i + 1}`, `10.2.0.${i + 1}`);
      expected.set(fqdn(`w${i}`), [`198.51.100.${i + 1}`]);
    }
    publish(east, 'f', 'shared', '192.0.2.100');
    publish(west, 'f', 'shared', '198.51.100.100');
    expected.set(fqdn('shared'), ['192.0.2.100', '198.51.100.100']);
    f = await startFedns([
      { name: 'east', server: east, region: 'r1' },
      { name: 'west', server: west, region: 'r2' },
    ]);
    for (const [n, want] of expected) await eventually(() => f.answer(n), same(want), `${n} answering`);
    await east.waitForWatches(undefined, 2);
    loop = new QueryLoop(f, expected);
    loop.start();
  });

  afterAll(async () => {
    await loop?.stop();
    await f?.stop();
    await Promise.all([east?.stop(), west?.stop()]);
  });

  beforeEach(() => {
    mark = loop.mark();
    historyMark = f.history.length;
    east.resetRequestLog();
  });

  /** After a fault: every existing name answered right throughout, east is live and current again. */
  async function afterFault(opts: { stale: boolean | 'either'; reason?: RegExp }): Promise<void> {
    await eventually(() => f.health('east'), (h) => h === 'live', 'east live again');
    // The watches work again: a service created now is answered.
    const name = `probe${++probe}`;
    publish(east, 'f', name, `203.0.113.${probe}`);
    await eventually(() => f.answer(fqdn(name)), same([`203.0.113.${probe}`]), 'a service created after the fault');
    unpublish(east, 'f', name);
    await eventually(() => f.answer(fqdn(name)), same('NXDOMAIN'), 'the probe service deleted');
    const now = loop.mark();
    expect(loop.bad.slice(mark.bad)).toEqual([]);
    expect(now.timeouts - mark.timeouts, 'queries without an answer within 2 s').toBe(0);
    // The loop really ran through the fault: at least three full rounds of every name.
    expect(now.queries - mark.queries).toBeGreaterThanOrEqual(3 * expected.size);
    const changes = f.history.slice(historyMark).filter((h) => h.cluster === 'east');
    if (opts.stale === true) {
      const stale = changes.find((h) => h.health === 'stale');
      expect(stale, 'east turned stale during the fault').toBeDefined();
      if (opts.reason) expect(stale!.reason).toMatch(opts.reason);
    } else if (opts.stale === false) {
      expect(changes.map((h) => `${h.health}: ${h.reason}`), 'a routine restart does not make the cluster stale').toEqual([]);
    }
    expect(changes.some((h) => h.health === 'expired')).toBe(false);
    expect(f.health('west')).toBe('live');
    expect(f.logs.filter((l) => l.level >= 50)).toEqual([]);
  }

  const restarts = () => f.fedns.federation.clusters.get('east')!.watchRestarts;

  it('410 Gone as the HTTP status of watch requests: re-lists, never stale', async () => {
    const before = restarts();
    const h = east.failWatch(410, { times: 20 });
    east.endOpenWatches();
    await hits(east, h, 20, 'watch 410');
    await east.waitForRequests({ verb: 'list' }, 20); // each 410 -> a re-list
    expect(restarts() - before).toBeGreaterThanOrEqual(20);
    await afterFault({ stale: false });
  });

  it('410 Gone as an in-stream ERROR event (new and open watches): re-lists, never stale', async () => {
    const h = east.expireNewWatches({ times: 15 });
    east.endOpenWatches();
    await hits(east, h, 15, 'in-stream 410 on new watches');
    for (let i = 0; i < 5; i++) {
      await east.waitForWatches('Service', 1);
      expect(east.expireOpenWatches('Service')).toBe(1);
    }
    await east.waitForRequests({ verb: 'list' }, 20); // each 410 -> a re-list
    await afterFault({ stale: false });
  });

  it('5xx on list: stale with the reason, paced retries, live again', async () => {
    const h = east.failList(503, { times: 20 });
    east.expireOpenWatches();
    await hits(east, h, 20, 'list 503');
    await afterFault({ stale: true, reason: /^list (services|endpointslices): API server error \(503\)/ });
    // Identical errors are not logged 20 times.
    const warned = f.logs.filter((l) => l.cluster === 'east' && l.msg === 'list/watch failed; retrying' && l.level === 40);
    expect(warned.length).toBeLessThan(10);
  });

  it('5xx on watch: stale, paced retries, the watch resumes from its resourceVersion (no re-list), live again', async () => {
    const h = east.failWatch(500, { times: 20 });
    east.endOpenWatches();
    await hits(east, h, 20, 'watch 500');
    await afterFault({ stale: true, reason: /^watch (services|endpointslices): API server error \(500\)/ });
    // Twenty failed watches, and (almost) no list: each retry asked to watch from where it was.
    expect(east.requestCount({ verb: 'list' })).toBeLessThanOrEqual(2);
    const watches = east.requestLog.filter((r) => r.verb === 'watch');
    expect(watches.length).toBeGreaterThan(20);
    expect(watches.every((r) => Number(r.query.resourceVersion) > 0)).toBe(true);
  });

  it('429 with Retry-After: waits as long as the server asks (not the 50 ms pace), then resumes the watch', async () => {
    const h = east.failWatch(429, { times: 20 });
    east.endOpenWatches();
    await hits(east, h, 20, 'watch 429', 30_000);
    await afterFault({ stale: true, reason: /^watch (services|endpointslices): throttled by the API server \(429\)/ });
    for (const kind of ['Service', 'EndpointSlice']) {
      const watches = east.requestLog.filter((r) => r.verb === 'watch' && r.kind === kind);
      const throttled = watches.filter((r) => r.status === 429);
      // The fake server sends "Retry-After: 1": every next watch of the kind came at least ~1 s later.
      for (const t of throttled) {
        const next = watches.find((r) => r.seq > t.seq);
        expect(next, 'a watch after each 429').toBeDefined();
        expect(next!.time - t.time).toBeGreaterThanOrEqual(950);
      }
    }
    expect(east.requestCount({ verb: 'list' })).toBe(0);
  }, 30_000);

  it('watches that close at once (reconnect storm): detected, restarts paced, never stale', async () => {
    const stormLogs = () => f.logs.filter((l) => l.cluster === 'east' && /reconnect storm:/.test(l.msg)).length;
    // A storm window without restarts first, so that this storm is a new one.
    await sleep(TIMING.stormWindowMs! + 100);
    const before = stormLogs();
    const h = east.closeWatchesImmediately({ times: 40 });
    east.endOpenWatches();
    await hits(east, h, 40, 'immediate watch close');
    expect(stormLogs() - before).toBeGreaterThanOrEqual(1);
    expect(stormLogs() - before).toBeLessThanOrEqual(4); // once per storm, not per restart
    // Paced: two watches of one kind are never closer than the restart interval (50 ms), where
    // immediate reconnects would be a millisecond or two apart.
    for (const kind of ['Service', 'EndpointSlice']) {
      const times = east.requestLog.filter((r) => r.verb === 'watch' && r.kind === kind).map((r) => r.time);
      expect(times.length).toBeGreaterThanOrEqual(10);
      const gaps = times.slice(1).map((t, i) => t - times[i]);
      expect(Math.min(...gaps), `gaps between ${kind} watches: ${gaps.join(' ')}`).toBeGreaterThanOrEqual(TIMING.restartIntervalMs! - 10);
    }
    await afterFault({ stale: false });
  });

  it('silent watches (new and open): the watchdog aborts and re-lists; never stale', async () => {
    const before = restarts();
    const h = east.silenceNewWatches({ times: 18 });
    east.endOpenWatches();
    await hits(east, h, 18, 'silent new watch');
    for (let i = 0; i < 2; i++) {
      const lists = east.requestCount({ verb: 'list', kind: 'Service' });
      // Silence the open Service watch once one is open that is not silent already.
      await eventually(() => east.silenceOpenWatches('Service'), (n) => n === 1, 'a live Service watch to silence');
      await east.waitForRequests({ verb: 'list', kind: 'Service' }, lists + 1); // watchdog -> re-list
    }
    await eventually(() => restarts() - before, (n) => n >= 20, '20 restarts by the watchdog');
    expect(f.logs.some((l) => l.cluster === 'east' && /watch silent for 300 ms/.test(String(l.reason)))).toBe(true);
    await afterFault({ stale: false });
  });

  it('malformed lines (new and open watches): skipped, re-listed, never stale', async () => {
    const h = east.malformNewWatches({ times: 15 });
    east.endOpenWatches();
    await hits(east, h, 15, 'malformed line on a new watch');
    for (let i = 0; i < 5; i++) {
      await east.waitForWatches('Service', 1);
      const lists = east.requestCount({ verb: 'list', kind: 'Service' });
      expect(east.sendMalformedLine('Service')).toBe(1);
      await east.waitForRequests({ verb: 'list', kind: 'Service' }, lists + 1);
    }
    await afterFault({ stale: false });
  });

  it('401 Unauthorized: stale with "credentials rejected (401)", live again once accepted', async () => {
    const h = east.denyAll(401, { times: 20 });
    east.endOpenWatches();
    await hits(east, h, 20, '401');
    await afterFault({ stale: true, reason: /credentials rejected \(401\)/ });
  });

  it('credentials rotated on disk after a 401: picked up, and the old watch position dropped (a re-list)', async () => {
    const h = east.denyAll(401, { times: 20 });
    east.endOpenWatches();
    await hits(east, h, 1, '401');
    writeFileSync(f.files.get('east')!, `${east.kubeconfig()}# rotated\n`, { mode: 0o600 });
    await eventually(() => f.logs.some((l) => l.cluster === 'east' && l.msg === 'kubeconfig changed on disk; using the new credentials'), (b) => b, 'the new kubeconfig');
    await hits(east, h, 20, '401');
    await afterFault({ stale: true, reason: /credentials rejected \(401\)/ });
    // A resourceVersion of the old credentials' server is no position on the new one.
    expect(east.requestLog.some((r) => r.verb === 'list' && r.status === 200)).toBe(true);
  });

  it('403 Forbidden: stale with the reason, live again once allowed', async () => {
    const h = east.denyAll(403, { times: 20 });
    east.endOpenWatches();
    await hits(east, h, 20, '403');
    await afterFault({ stale: true, reason: /access forbidden \(403\)/ });
  });

  it('watch connections dropped abruptly: stale briefly, the watches resume, live again', async () => {
    for (let i = 0; i < 20; i++) {
      await east.waitForWatches('Service', 1);
      await east.waitForWatches('EndpointSlice', 1);
      east.closeAllWatches();
    }
    await afterFault({ stale: true, reason: /connection lost/ });
    expect(east.requestCount({ verb: 'list' })).toBeLessThanOrEqual(2);
  });

  for (const mode of ['reset', 'hang'] as const) {
    it(`an API server ${mode === 'reset' ? 'unreachable (connections reset)' : 'hung (accepts, never answers)'} 20 times: stale, paced retries, live again each time`, async () => {
      for (let i = 0; i < 20; i++) {
        await east.waitForWatches('Service', 1);
        await east.waitForWatches('EndpointSlice', 1);
        const seen = east.brokenConnections;
        east.breakAll(mode);
        await east.waitFor(() => east.brokenConnections > seen, 5000, `a connection ${mode === 'reset' ? 'reset' : 'left hanging'}`);
        await sleep(100);
        east.restore();
      }
      await afterFault({ stale: true, reason: mode === 'reset' ? /API server unreachable|connection lost/ : /connection lost|unreachable/ });
    }, 60_000);
  }

  it('paginated re-lists (pages of 2, some continue tokens expired): nothing is ever dropped', async () => {
    east.forcePageSize(2);
    try {
      for (let i = 0; i < 20; i++) {
        await east.waitForWatches('Service', 1);
        await east.waitForWatches('EndpointSlice', 1);
        if (i % 5 === 4) {
          // Expire the continue token of the next list half way: the list starts over.
          const seen = east.requestCount({ verb: 'list' });
          east.expireOpenWatches();
          await east.waitForRequests({ verb: 'list' }, seen + 2);
          east.compact();
        } else east.expireOpenWatches();
      }
      await east.waitForWatches('Service', 1);
      await east.waitForWatches('EndpointSlice', 1);
    } finally {
      east.forcePageSize(null);
    }
    const continued = east.requestLog.filter((r) => r.verb === 'list' && r.query.continue);
    expect(continued.length).toBeGreaterThanOrEqual(20 * 3);
    expect(continued.some((r) => r.status === 410), 'a continue token expired and the list started over').toBe(true);
    await afterFault({ stale: 'either' });
  });

  it('TLS mismatch (kubeconfig trusts the wrong CA): health reason, retried, the others keep serving; fixed file -> live', async () => {
    const tlsBefore = east.tlsErrors;
    await f.setClusters([
      { name: 'east', server: east, region: 'r1' },
      { name: 'west', server: west, region: 'r2' },
      { name: 'mistrust', server: east, region: 'r3', kubeconfig: east.wrongCaKubeconfig() },
    ]);
    await east.waitFor(() => east.tlsErrors - tlsBefore >= 20, 15_000, '20 TLS handshake failures');
    const state = f.fedns.federation.clusters.get('mistrust')!;
    expect(state.health).toBe('syncing');
    expect(state.reason).toMatch(/^list (services|endpointslices): TLS: .*certificate/);
    expect(f.logs.some((l) => l.cluster === 'mistrust' && l.level === 40 && /TLS: /.test(String(l.reason)))).toBe(true);
    // The kubeconfig is fixed on disk: picked up at the next failure.
    writeFileSync(f.files.get('mistrust')!, east.kubeconfig(), { mode: 0o600 });
    await eventually(() => f.health('mistrust'), (h) => h === 'live', 'the fixed cluster live');
    expect(f.logs.some((l) => l.cluster === 'mistrust' && l.msg === 'kubeconfig changed on disk; using the new credentials')).toBe(true);
    await f.setClusters([
      { name: 'east', server: east, region: 'r1' },
      { name: 'west', server: west, region: 'r2' },
    ]);
    await afterFault({ stale: false });
  });
});

// ---- expiry -----------------------------------------------------------------------------

describe('kube source: expiry after the grace period', () => {
  let east: FakeApiServer;
  let west: FakeApiServer;
  let panicOn: Running;
  let panicOff: Running;

  beforeAll(async () => {
    [east, west] = await Promise.all([FakeApiServer.start({ bookmarkIntervalMs: 100 }), FakeApiServer.start({ bookmarkIntervalMs: 100 })]);
    publish(east, 'x', 'web', '192.0.2.1');
    publish(west, 'x', 'web', '198.51.100.1');
    publish(east, 'x', 'only-east', '192.0.2.2');
    const clusters = [
      { name: 'east', server: east, region: 'r1' },
      { name: 'west', server: west, region: 'r2' },
    ];
    panicOn = await startFedns(clusters, { health: { gracePeriod: 0.5, panicMode: true } });
    panicOff = await startFedns(clusters, { health: { gracePeriod: 0.5, panicMode: false } });
    for (const f of [panicOn, panicOff]) {
      await eventually(() => f.answer(fqdn('web', 'x')), same(['192.0.2.1', '198.51.100.1']), 'both clusters');
      await eventually(() => f.answer(fqdn('only-east', 'x')), same(['192.0.2.2']), 'the east-only service');
    }
  });

  afterAll(async () => {
    await panicOn?.stop();
    await panicOff?.stop();
    await Promise.all([east?.stop(), west?.stop()]);
  });

  for (const mode of ['reset', 'hang'] as const) {
    it(`an unreachable cluster (${mode}) goes stale, then expires: its addresses leave; panic mode keeps a service every cluster of which expired`, async () => {
      const mark = panicOn.history.length;
      east.breakAll(mode);
      try {
        for (const f of [panicOn, panicOff]) {
          await eventually(() => f.health('east'), (h) => h === 'expired', 'east expired', 10_000);
          await eventually(() => f.answer(fqdn('web', 'x')), same(['198.51.100.1']), 'only west left');
        }
        expect(await panicOn.answer(fqdn('only-east', 'x'))).toEqual(['192.0.2.2']);
        expect(await panicOff.answer(fqdn('only-east', 'x'))).toBe('NXDOMAIN');
        const east1 = panicOn.history.slice(mark).filter((h) => h.cluster === 'east');
        expect(east1.map((h) => h.health)).toEqual(['stale', 'expired']);
        expect(east1[0].reason).toMatch(mode === 'reset' ? /API server unreachable: ECONNRESET|connection lost/ : /did not answer within|watch silent|connection lost/);
        expect(panicOn.health('west')).toBe('live');
        // The latest reason says precisely what is wrong.
        const precise = mode === 'reset' ? /^(list|watch) \w+: API server unreachable: ECONNRESET/ : /^(list|watch) \w+: API server did not answer within 2 s/;
        await eventually(() => panicOn.fedns.federation.clusters.get('east')!.reason, (r) => precise.test(r), 'a precise reason');
      } finally {
        east.restore();
      }
      for (const f of [panicOn, panicOff]) {
        await eventually(() => f.health('east'), (h) => h === 'live', 'east live again');
        await eventually(() => f.answer(fqdn('web', 'x')), same(['192.0.2.1', '198.51.100.1']), 'east back');
        await eventually(() => f.answer(fqdn('only-east', 'x')), same(['192.0.2.2']), 'the east-only service back');
      }
    });
  }
});

// ---- a flapping API server --------------------------------------------------------------

// Production pacing (one restart per second per resource, stale after 3 s without a working
// list or watch) against an API server that ends every watch every 3.5 s with a fault each time.
const FLAP: KubeSourceOptions = {
  idleLimitMs: 10_000,
  requestTimeoutMs: 10_000,
  watchTimeoutSeconds: 30,
  restartIntervalMs: 1000,
  staleAfterMs: 3000,
  stormRestarts: 10,
  stormWindowMs: 30_000,
  missingKindRecheckMs: 1000,
};

/** Extended DNS Error info code of an answer (RFC 8914), if any. */
function edeCode(m: Message): number | undefined {
  const o = m.edns?.options.find((x) => x.code === 15);
  return o && o.data.length >= 2 ? o.data.readUInt16BE(0) : undefined;
}

describe('kube source: a flapping API server is paced, never blind', () => {
  let east: FakeApiServer;
  let west: FakeApiServer;
  let f: Running;
  let loop: QueryLoop;
  let mark: ReturnType<QueryLoop['mark']>;
  let gen = 0;
  const expected = new Map<string, string[]>();
  const CHANGED = 6;

  beforeAll(async () => {
    useKubeTiming(FLAP);
    [east, west] = await Promise.all([FakeApiServer.start({ bookmarkIntervalMs: 100 }), FakeApiServer.start({ bookmarkIntervalMs: 100 })]);
    for (let i = 0; i < 3; i++) {
      publish(east, 'f', `e${i}`, `192.0.2.${i + 1}`, `10.1.0.${i + 1}`);
      expected.set(fqdn(`e${i}`), [`192.0.2.${i + 1}`]);
    }
    publish(west, 'f', 'w0', '198.51.100.1');
    expected.set(fqdn('w0'), ['198.51.100.1']);
    // The services the tests change: not in the query loop, each change is timed on its own.
    for (let i = 0; i < CHANGED; i++) publish(east, 'f', `c${i}`, `203.0.113.${i + 1}`);
    f = await startFedns([
      { name: 'east', server: east, region: 'r1' },
      { name: 'west', server: west, region: 'r2' },
    ]);
    for (const [n, want] of expected) await eventually(() => f.answer(n), same(want), `${n} answering`);
    await eventually(() => f.answer(fqdn(`c${CHANGED - 1}`)), same([`203.0.113.${CHANGED}`]), 'the changed services answering');
    await east.waitForWatches(undefined, 2);
    loop = new QueryLoop(f, expected);
    loop.start();
  });

  afterAll(async () => {
    await loop?.stop();
    await f?.stop();
    await Promise.all([east?.stop(), west?.stop()]);
    useKubeTiming(TIMING);
  });

  beforeEach(() => {
    mark = loop.mark();
    east.resetRequestLog();
  });

  /** Every stable name answered right throughout, no query went unanswered. */
  function loopClean(): void {
    const now = loop.mark();
    expect(loop.bad.slice(mark.bad)).toEqual([]);
    expect(now.timeouts - mark.timeouts, 'queries without an answer within 2 s').toBe(0);
    expect(now.queries - mark.queries).toBeGreaterThan(0);
  }

  /**
   * Changes one of the c* services (a new address; every third change a delete, then a
   * re-create) and resolves with the milliseconds until fedns answered with it.
   */
  async function change(i: number): Promise<{ ms: number; what: string; since: number }> {
    const name = fqdn(`c${i}`);
    const before = await f.answer(name);
    let want: string[] | string;
    if (++gen % 3 === 0 && before !== 'NXDOMAIN') {
      unpublish(east, 'f', `c${i}`);
      want = 'NXDOMAIN';
    } else {
      const ip = `198.18.${(gen >> 8) & 255}.${gen & 255}`;
      publish(east, 'f', `c${i}`, ip);
      want = [ip];
    }
    const since = Date.now();
    await eventually(() => f.answer(name), same(want), `c${i} -> ${JSON.stringify(want)}`, 30_000);
    return { ms: Date.now() - since, what: `c${i} -> ${JSON.stringify(want)}`, since };
  }

  const perKind = (fn: (kind: string) => void) => ['Service', 'EndpointSlice'].forEach(fn);

  /** Each fault, as the flapping server injects it when it ends the watches; resolves when it is over. */
  const FAULTS: Record<string, () => Promise<void>> = {
    '410 on the watch request': async () => {
      perKind((kind) => east.failWatch(410, { times: 1, kind }));
      east.endOpenWatches();
    },
    'in-stream 410': async () => void east.expireOpenWatches(),
    'connection closed': async () => void east.closeAllWatches(),
    'watch closed at once': async () => {
      perKind((kind) => east.closeWatchesImmediately({ times: 1, kind }));
      east.endOpenWatches();
    },
    '500 on the watch request': async () => {
      perKind((kind) => east.failWatch(500, { times: 1, kind }));
      east.endOpenWatches();
    },
    'malformed line': async () => void east.sendMalformedLine(),
    'failed list': async () => {
      perKind((kind) => east.failList(500, { times: 1, kind }));
      east.expireOpenWatches();
    },
    '429 with Retry-After': async () => {
      perKind((kind) => east.failWatch(429, { times: 1, kind }));
      east.endOpenWatches();
    },
    'unreachable for 1 s': async () => {
      east.breakAll('reset');
      await sleep(1000);
      east.restore();
    },
    'hung for 1 s (accepts, never answers)': async () => {
      east.breakAll('hang');
      await sleep(1000);
      east.restore();
    },
  };

  it('a fault every 3.5 s, every kind twice: each change to a service is answered within 3 s of the fault', async () => {
    const late: string[] = [];
    const all: number[] = [];
    let i = 0;
    for (let round = 0; round < 2; round++) {
      for (const [what, inject] of Object.entries(FAULTS)) {
        const cycle = Date.now();
        const injected = inject();
        const c = change(i++ % CHANGED);
        await injected;
        const faultOver = Date.now();
        const r = await c;
        // Served within 3 s of the end of the fault (of the change, if that came later).
        const ms = r.since + r.ms - Math.max(faultOver, r.since);
        all.push(ms);
        if (ms > 3000) late.push(`${what}: ${r.what} took ${ms} ms`);
        await sleep(Math.max(0, cycle + 3500 - Date.now()));
      }
    }
    expect(late).toEqual([]);
    expect(all.length).toBe(2 * Object.keys(FAULTS).length);
    await eventually(() => f.health('east'), (h) => h === 'live', 'east live again');
    loopClean();
    expect(f.health('west')).toBe('live');
  }, 120_000);

  it('a burst of 15 watch closes in 3 s: a change is answered within 5 s, restarts stay paced', async () => {
    const burst = (async () => {
      for (let k = 0; k < 15; k++) {
        east.endOpenWatches();
        await sleep(200);
      }
    })();
    await sleep(500);
    const c = change(0);
    await burst;
    const burstOver = Date.now();
    const r = await c;
    expect(r.since + r.ms - burstOver, `${r.what} after the burst`).toBeLessThanOrEqual(5000);
    // Paced: at most about one watch per second per resource during the burst, not 15.
    for (const kind of ['Service', 'EndpointSlice']) expect(east.requestCount({ verb: 'watch', kind })).toBeLessThanOrEqual(6);
    loopClean();
  }, 30_000);

  it('restarts against a failing API server are paced: one a second per resource, not a storm', async () => {
    const lists = east.failList(500);
    const watches = east.failWatch(500);
    east.expireOpenWatches();
    await sleep(5000);
    lists.clear();
    watches.clear();
    for (const kind of ['Service', 'EndpointSlice']) {
      const n = east.requestCount({ kind });
      // 5 s at one restart a second (plus the first at once): about 6; without pacing, hundreds.
      expect(n, `${kind} requests in 5 s of failures`).toBeLessThanOrEqual(8);
      expect(n, `${kind} retried throughout`).toBeGreaterThanOrEqual(3);
    }
    expect(f.fedns.federation.clusters.get('east')!.reason).toMatch(/API server error \(500\)/);
    await eventually(() => f.health('east'), (h) => h === 'live', 'east live again', 5000);
    loopClean();
  }, 30_000);

  it('watches that never work make the cluster stale within seconds (stale TTL, EDE 3), and an API server gone meanwhile is noticed', async () => {
    const closes = east.closeWatchesImmediately();
    const started = Date.now();
    try {
      east.endOpenWatches();
      // No failure anywhere, but no working watch either: stale after 3 s.
      await eventually(() => f.health('east'), (h) => h === 'stale', 'east stale', 8000);
      const after = Date.now() - started;
      expect(after).toBeGreaterThanOrEqual(2500);
      expect(after).toBeLessThanOrEqual(6000);
      expect(f.fedns.federation.clusters.get('east')!.reason).toMatch(/no working (list or )?watch for 3 s/);
      // Every answer of the cluster's data says so (the zone is republished in the next turn).
      const m = await eventually(() => f.dns.query(fqdn('e0'), RRType.A, 2000, true), (a) => a?.answers[0]?.ttl === 5, 'the stale TTL');
      expect(edeCode(m!)).toBe(3);
      // The API server goes away while restarts are paced: still stale, with the reason.
      east.breakAll('hang');
      await eventually(() => f.fedns.federation.clusters.get('east')!.reason, (r) => /did not answer|no working/.test(r), 'a reason for the hung server', 5000);
      expect(f.health('east')).toBe('stale');
    } finally {
      closes.clear();
      east.restore();
    }
    await eventually(() => f.health('east'), (h) => h === 'live', 'east live again', 5000);
    const m = await eventually(() => f.dns.query(fqdn('e0'), RRType.A, 2000, true), (a) => a?.answers[0]?.ttl === 30, 'the normal TTL');
    expect(edeCode(m!)).toBeUndefined();
    // A change is served again.
    await change(1);
    loopClean();
  }, 60_000);

  it('an API server that goes away while watches keep closing at once is stale within a few seconds', async () => {
    const closes = east.closeWatchesImmediately();
    try {
      east.endOpenWatches();
      await sleep(2000);
      const gone = Date.now();
      east.breakAll('hang');
      await eventually(() => f.health('east'), (h) => h === 'stale', 'east stale', 10_000);
      expect(Date.now() - gone, 'noticed').toBeLessThanOrEqual(5000);
    } finally {
      closes.clear();
      east.restore();
    }
    await eventually(() => f.health('east'), (h) => h === 'live', 'east live again', 5000);
  }, 30_000);
});
