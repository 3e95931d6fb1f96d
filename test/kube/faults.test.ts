// The fault matrix: every scripted API-server fault, injected at least 20 times while a client
// queries every existing name over UDP without pause. No name that exists may ever answer
// NXDOMAIN or an empty answer, and the cluster must come back to `live` once the fault ends.
// Then expiry: a cluster unreachable past its grace period stops contributing (panic mode aside).
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { KubeSourceOptions } from '../../src/cluster/kube.js';
import { Rcode, RRType } from '../../src/dns/constants.js';
import { FakeApiServer, type FaultHandle } from '../support/fake-apiserver.js';
import { aRecords, eventuallyWith, kubeHarness, publish, rcodeText, same, sleep, unpublish, useKubeTiming, type Running } from '../support/kube-harness.js';

// ---- helpers ----------------------------------------------------------------------------

const TIMING: KubeSourceOptions = {
  idleLimitMs: 300,
  backoffBaseMs: 10,
  backoffCapMs: 200,
  backoffResetMs: 500,
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

  it('5xx on list: stale with the reason, backoff, live again', async () => {
    const h = east.failList(503, { times: 20 });
    east.expireOpenWatches();
    await hits(east, h, 20, 'list 503');
    await afterFault({ stale: true, reason: /^list (services|endpointslices): API server error \(503\)/ });
    // Identical errors are not logged 20 times.
    const warned = f.logs.filter((l) => l.cluster === 'east' && l.msg === 'list/watch failed; retrying with backoff' && l.level === 40);
    expect(warned.length).toBeLessThan(10);
  });

  it('5xx on watch: stale, backoff, the watch resumes from its resourceVersion (no re-list), live again', async () => {
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

  it("429 with Retry-After: waits as long as the server asks (not the 10 ms backoff), then resumes the watch", async () => {
    const h = east.failWatch(429, { times: 3, kind: 'Service' });
    east.endOpenWatches();
    await hits(east, h, 3, 'watch 429', 15_000);
    await afterFault({ stale: true, reason: /^watch services: throttled by the API server \(429\)/ });
    const watches = east.requestLog.filter((r) => r.verb === 'watch' && r.kind === 'Service');
    const throttled = watches.filter((r) => r.status === 429);
    expect(throttled.length).toBe(3);
    // The fake server sends "Retry-After: 1": every next Service watch came at least ~1 s later.
    for (const t of throttled) {
      const next = watches.find((r) => r.seq > t.seq);
      expect(next, 'a watch after each 429').toBeDefined();
      expect(next!.time - t.time).toBeGreaterThanOrEqual(950);
    }
    expect(east.requestCount({ verb: 'list', kind: 'Service' })).toBe(0);
  });

  it('watches that close at once (reconnect storm): detected, backed off, never stale', async () => {
    const stormLogs = () => f.logs.filter((l) => l.cluster === 'east' && /reconnect storm:/.test(l.msg)).length;
    // A storm window without restarts first, so that this storm is a new one.
    await sleep(TIMING.stormWindowMs! + 100);
    const before = stormLogs();
    const h = east.closeWatchesImmediately({ times: 40 });
    east.endOpenWatches();
    await hits(east, h, 40, 'immediate watch close');
    expect(stormLogs() - before).toBeGreaterThanOrEqual(1);
    expect(stormLogs() - before).toBeLessThanOrEqual(4); // once per storm, not per restart
    // Backed off: 40 closes took visibly longer than 40 immediate reconnects would.
    const watches = east.requestLog.filter((r) => r.verb === 'watch');
    expect(watches.at(-1)!.time - watches[0].time).toBeGreaterThan(100);
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
