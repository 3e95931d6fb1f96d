/**
 * Differential test against Knot DNS: the zone fedns serves (printed by `fedns zone` from the
 * same configuration) is loaded into knotd, and a corpus of queries built from that zone
 * (every owner x type, case variants, empty non-terminals, NXDOMAIN shapes, CNAME fallbacks,
 * SRV, apex, glue, out-of-zone names; UDP plus a TCP subset) goes to both servers. Rcode,
 * every header flag and each section (as a multiset, so rotation does not count) must match,
 * TTLs included. The SOA serial is the one the running fedns serves (it is time-based per
 * process), patched into the printed zone before knotd loads it.
 *
 * Traffic policies narrow answers per client, never the zone: services carry nearest, failover
 * and weighted annotations chosen so that a client in no client network (dig, from 127.0.0.1)
 * is owed every address, and the corpus and the AXFR must still match Knot exactly. A second,
 * smaller run gives multi-cluster services failover and weighted, which narrow every client's
 * A/AAAA answers (by design: they do not depend on where the client is): the AXFR still matches
 * Knot, and those answers are the subset the policy names.
 *
 * No query class is excluded. ANY is compared exactly too: knotd 3.x answers ANY with one
 * RRset (RFC 8482 4.2), like fedns, and both pick the first RRset in type order (NS at the
 * apex). Should a future knotd pick another RRset, that is an allowed RFC 8482 choice, not a
 * bug: compare ANY as "one of knotd's RRsets" then.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCorpus, corpusSummary, parseZoneText, type CorpusQuery } from '../support/corpus.js';
import { CLI, demoCopy } from '../support/demo.js';
import { compareResults, dig, digManyReasking, summarise, type DigResult } from '../support/dig.js';
import { startFedns, testListen, withYaml, type FednsProcess } from '../support/fedns.js';
import { UDP_PATHS, udpBatch } from '../support/udp-paths.js';
import { requirePeers, startKnot, type KnotPeer } from '../support/peers.js';
import { VERSION } from '../../src/version.js';

const run = promisify(execFile);
const ready = requirePeers('knotd', 'dig');
const SEED = Number(process.env.FEDNS_CORPUS_SEED ?? 20240601);
const ALL_FLAGS = ['qr', 'aa', 'tc', 'rd', 'ra', 'ad', 'cd'];

/**
 * One extra service in cluster alpha with 90 IPv4 and 40 IPv6 load-balancer addresses, so the
 * corpus also has answers over 512 and over 1232 bytes (truncation, additional-section
 * trimming, long CNAME chains to big RRsets), with the Service annotations given.
 */
function bigService(annotations: string): string {
  const v4 = Array.from({ length: 90 }, (_, i) => `{ ip: 192.0.2.${100 + i} }`);
  const v6 = Array.from({ length: 40 }, (_, i) => `{ ip: "2001:db8:c::${(i + 1).toString(16)}" }`);
  return `# Added by knot-diff.test.ts: a service with big answers.
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: { name: big, namespace: load, annotations: ${annotations} }
    spec:
      type: LoadBalancer
      ipFamilies: [IPv4, IPv6]
      ports: [{ name: http, port: 80, protocol: TCP }, { name: https, port: 443, protocol: TCP }]
    status:
      loadBalancer: { ingress: [${[...v4, ...v6].join(', ')}] }
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: big-1
      namespace: load
      labels: { kubernetes.io/service-name: big }
    addressType: IPv4
    ports: [{ name: http, port: 80, protocol: TCP }]
    endpoints:
      - addresses: [10.1.9.1]
        conditions: { ready: true }
        zone: us-east-a
`;
}

/** Adds `annotations` (a YAML flow map) to the Service NAMESPACE/NAME in a demo manifest of the copy. */
function annotate(dir: string, file: string, service: string, annotations: string): void {
  const path = join(dir, 'demo', file);
  const [namespace, name] = service.split('/');
  const from = `metadata: { name: ${name}, namespace: ${namespace} }`;
  const text = readFileSync(path, 'utf8');
  if (!text.includes(from)) throw new Error(`annotate: no "${from}" in ${file}; update knot-diff.test.ts`);
  writeFileSync(path, text.replace(from, `metadata: { name: ${name}, namespace: ${namespace}, annotations: ${annotations} }`));
}

/**
 * Policies whose answer to a client in no client network is every address, so that Knot's
 * answers are still owed exactly: nearest on multi-cluster services (nginx, from the demo, and
 * web: dual-stack, SRV), failover naming first a cluster without the service (billing), weighted
 * over the only cluster that has it (big: truncation and additional trimming on the policy path).
 */
function allViewPolicies(dir: string): void {
  for (const file of ['alpha/services.yaml', 'bravo/services.yaml']) annotate(dir, file, 'shop/web', '{ fedns.io/policy: nearest }');
  annotate(dir, 'bravo/services.yaml', 'finance/billing', '{ fedns.io/policy: failover, fedns.io/failover: "charlie,bravo" }');
  writeFileSync(join(dir, 'demo', 'alpha', 'zz-big.yaml'), bigService('{ fedns.io/policy: weighted, fedns.io/weights: "alpha=1,bravo=5" }'));
}

/** fedns on `copy`, and knotd on the zone fedns prints from it (same SOA serial), both allowing AXFR from 127.0.0.1. */
async function startPair(copy: ReturnType<typeof demoCopy>): Promise<{ fedns: FednsProcess; knot: KnotPeer; zoneText: string; serial: number }> {
  writeFileSync(copy.config, withYaml('transfer: { allow: [127.0.0.1/32] }')(readFileSync(copy.config, 'utf8')));
  const fedns = await startFedns({ config: copy.config });
  try {
    const printed = await run(process.execPath, [CLI, 'zone', '--config', fedns.config], { timeout: 30_000 });
    const serial = await servedSerial(fedns.port);
    const zoneText = withSerial(printed.stdout, serial);
    // The same identity as the demo's fedns, so that CH names and NSID can be compared too.
    const knot = await startKnot({
      origin: 'example.com.',
      zoneText,
      serverOptions: [`    identity: "fedns-demo"`, `    version: "fedns ${VERSION}"`, `    nsid: "fedns-demo"`].join('\n'),
      extraConfig: 'acl:\n  - id: xfr\n    address: 127.0.0.1\n    action: transfer',
      zoneOptions: '    acl: [xfr]',
    });
    return { fedns, knot, zoneText, serial };
  } catch (e) {
    await fedns.stop();
    throw e;
  }
}

/** Differences between the AXFRs of the two servers (records as a multiset, TTLs included). */
async function axfrDiffs(fedns: FednsProcess, knot: KnotPeer): Promise<{ diffs: string[]; records: number }> {
  const [a, b] = await Promise.all([fedns.port, knot.port].map((port) => dig(['@127.0.0.1', '-p', String(port), '+time=5', 'example.com', 'AXFR'])));
  if (!a.answer.length || !b.answer.length) throw new Error(`AXFR failed: fedns ${summarise(a)} knotd ${summarise(b)}`);
  return { diffs: compareResults(a, b, { labels: ['fedns', 'knotd'], sections: ['answer'], flags: [] }), records: a.answer.length };
}

/** The SOA serial fedns is serving right now. */
async function servedSerial(port: number, zone = 'example.com'): Promise<number> {
  const r = await dig(['@127.0.0.1', '-p', String(port), zone, 'SOA']);
  const soa = r.answer.find((x) => x.type === 'SOA');
  if (!soa) throw new Error(`no SOA from fedns: ${summarise(r)}`);
  return Number(soa.data.split(' ')[2]);
}

/** The zone text with the SOA serial replaced (fedns picks a time-based serial per process). */
function withSerial(zoneText: string, serial: number): string {
  let done = false;
  const out = zoneText
    .split('\n')
    .map((line) => {
      const m = /^(\S+\s+\d+\s+IN\s+SOA\s+\S+\s+\S+\s+)(\d+)(\s.*)$/.exec(line);
      if (!m || done) return line;
      done = true;
      return `${m[1]}${serial}${m[3]}`;
    })
    .join('\n');
  if (!done) throw new Error('withSerial: no SOA line in the zone text');
  return out;
}

describe.skipIf(!ready).each(UDP_PATHS)('fedns vs knotd on the same zone (UDP $name)', ({ batch }) => {
  let fedns: FednsProcess;
  let knot: KnotPeer;
  let zoneText: string;
  let serial: number;
  let corpus: CorpusQuery[];
  let copy: ReturnType<typeof demoCopy> | undefined;

  beforeAll(async () => {
    copy = demoCopy(udpBatch(batch, testListen));
    allViewPolicies(copy.dir);
    ({ fedns, knot, zoneText, serial } = await startPair(copy));
    corpus = buildCorpus(zoneText, { seed: SEED });
  });

  afterAll(async () => {
    await Promise.all([fedns?.stop(), knot?.stop()]);
    copy?.cleanup();
  });

  it('the corpus is big and covers every kind of name', () => {
    const summary = corpusSummary(corpus);
    console.log(`corpus seed ${SEED}: ${corpus.length} queries`, summary);
    expect(corpus.length).toBeGreaterThanOrEqual(500);
    for (const kind of ['big', 'big-tcp', 'owner', 'nodata', 'cname-fallback', 'any', 'case', 'ent', 'nxdomain-deep', 'nxdomain-sibling', 'nxdomain-under-cname', 'nxdomain-srv', 'apex-owner', 'apex-nodata', 'glue-owner', 'glue-nodata', 'out-of-zone', 'srv-noedns', 'srv-bufsize512']) {
      expect(summary[kind] ?? 0, kind).toBeGreaterThan(0);
    }
    expect(corpus.filter((q) => q.tcp).length).toBeGreaterThanOrEqual(100);
    // Every owner name of the zone is asked.
    const asked = new Set(corpus.map((q) => q.name.toLowerCase()));
    for (const r of parseZoneText(zoneText).records) expect(asked.has(r.name), r.name).toBe(true);
  });

  it('answers the identity names (CH TXT) and NSID exactly like knotd', async () => {
    const queries: string[][] = [];
    for (const name of ['id.server', 'hostname.bind', 'version.server', 'version.bind', 'ID.Server'])
      for (const type of ['TXT', 'A']) for (const edns of ['+edns', '+noedns']) queries.push([name, 'CH', type, edns]);
    queries.push(['authors.bind', 'CH', 'TXT'], ['nginx.default.fed.example.com', 'A', '+nsid'], ['id.server', 'CH', 'TXT', '+nsid', '+tcp']);
    const diffs: string[] = [];
    for (const q of queries) {
      const [a, b] = await Promise.all([fedns.port, knot.port].map((port) => dig(['@127.0.0.1', '-p', String(port), '+tries=1', '+time=2', ...q])));
      const d = compareResults(a, b, { labels: ['fedns', 'knotd'], flags: ['aa', 'tc', 'ra'] });
      if (JSON.stringify(a.ednsOptions.filter((o) => o.startsWith('NSID'))) !== JSON.stringify(b.ednsOptions.filter((o) => o.startsWith('NSID')))) {
        d.push(`NSID: fedns=${JSON.stringify(a.ednsOptions)} knotd=${JSON.stringify(b.ednsOptions)}`);
      }
      if (d.length) diffs.push(`${q.join(' ')}: ${d.join('; ')} [fedns ${summarise(a)}] [knotd ${summarise(b)}]`);
    }
    expect(diffs).toEqual([]);
  });

  it('has the policies in force: a client in alpha\'s network gets alpha\'s address of web.shop', async () => {
    const a = (r: DigResult) => r.answer.map((x) => x.data).sort();
    const ask = (...from: string[]) => dig(['@127.0.0.1', '-p', String(fedns.port), '+norec', ...from, 'web.shop.fed.example.com', 'A']);
    expect(a(await ask('-b', '127.0.0.2'))).toEqual(['192.0.2.20']);
    expect(a(await ask())).toEqual(['192.0.2.20', '198.51.100.20']);
  });

  it('transfers the same zone as knotd (AXFR), policies and all', async () => {
    const { diffs, records } = await axfrDiffs(fedns, knot);
    expect(diffs).toEqual([]);
    expect(records).toBeGreaterThan(130); // the big service's addresses included
  });

  it('answers the corpus exactly like knotd (rcode, flags, sections as sets, TTLs)', async () => {
    const ours = await compareWithKnot(fedns.port, knot.port, corpus);

    // Sanity: the comparison compared something real.
    const rcodes = new Set(ours.map((r) => r.status));
    for (const s of ['NOERROR', 'NXDOMAIN', 'REFUSED']) expect(rcodes.has(s), s).toBe(true);
    expect(ours.filter((r) => r.transport === 'TCP').length).toBeGreaterThanOrEqual(100);
    expect(ours.filter((r) => r.flags.has('tc')).length).toBeGreaterThan(0);
    expect(ours.filter((r) => r.answer.length >= 90).length).toBeGreaterThan(0);

    // The data did not change under the comparison (same serial before and after).
    expect(await servedSerial(fedns.port)).toBe(serial);
  });
});

describe.skipIf(!ready)('fedns vs knotd on the clusterset zone (mcs)', () => {
  let fedns: FednsProcess;
  let knot: KnotPeer;
  let zoneText: string;
  let serial: number;
  let corpus: CorpusQuery[];
  let copy: ReturnType<typeof demoCopy> | undefined;

  beforeAll(async () => {
    // The demo as shipped serves clusterset.local. beside example.com.: exported nginx, web (a ClusterSetIP) and headless db.
    copy = demoCopy(testListen);
    fedns = await startFedns({ config: copy.config });
    const printed = await run(process.execPath, [CLI, 'zone', '--zone', 'clusterset.local.', '--config', fedns.config], { timeout: 30_000 });
    serial = await servedSerial(fedns.port, 'clusterset.local');
    zoneText = withSerial(printed.stdout, serial);
    knot = await startKnot({ origin: 'clusterset.local.', zoneText });
    corpus = buildCorpus(zoneText, { seed: SEED });
  });

  afterAll(async () => {
    await Promise.all([fedns?.stop(), knot?.stop()]);
    copy?.cleanup();
  });

  it('answers the corpus of the clusterset zone exactly like knotd', async () => {
    const summary = corpusSummary(corpus);
    for (const kind of ['owner', 'nodata', 'case', 'ent', 'nxdomain-deep', 'nxdomain-sibling', 'nxdomain-srv', 'apex-owner', 'out-of-zone'])
      expect(summary[kind] ?? 0, kind).toBeGreaterThan(0);
    const asked = new Set(corpus.map((q) => q.name.toLowerCase()));
    for (const name of ['dns-version.clusterset.local.', 'web.shop.svc.clusterset.local.', 'db-0.charlie-eu.db.data.svc.clusterset.local.', '_postgres._tcp.db.data.svc.clusterset.local.'])
      expect(asked.has(name), name).toBe(true);
    const ours = await compareWithKnot(fedns.port, knot.port, corpus);
    const rcodes = new Set(ours.map((r) => r.status));
    for (const s of ['NOERROR', 'NXDOMAIN', 'REFUSED']) expect(rcodes.has(s), s).toBe(true);
    expect(await servedSerial(fedns.port, 'clusterset.local')).toBe(serial);
  });
});

/** Sends the corpus to both servers and expects the same answers (rcode, every flag, sections as sets, OPT); returns fedns's. */
async function compareWithKnot(fednsPort: number, knotPort: number, corpus: CorpusQuery[]): Promise<DigResult[]> {
  const started = Date.now();
  const [ours, theirs] = await Promise.all([fednsPort, knotPort].map((port) => digManyReasking('127.0.0.1', port, corpus)));
  const diffs: string[] = [];
  const byKind = new Map<string, number>();
  let truncatedCount = 0;
  let truncatedDiffering = 0;
  corpus.forEach((q, i) => {
    const a = ours[i];
    const b = theirs[i];
    // A truncated (TC=1) answer: rcode, flags and OPT must match; what else it carries is
    // up to the server (knotd keeps the RRsets that fit, e.g. the CNAME of a chain; fedns
    // sends none) because a client discards it and asks again over TCP (RFC 2181 9,
    // RFC 7766 5). The full answers are compared by the TCP queries of the corpus.
    const truncated = a.flags.has('tc') && b.flags.has('tc');
    if (truncated) {
      truncatedCount++;
      if (compareResults(a, b).length) truncatedDiffering++;
    }
    const d = compareResults(a, b, { labels: ['fedns', 'knot'], flags: ALL_FLAGS, sections: truncated ? [] : undefined });
    const opt = (r: DigResult) => (r.edns ? `version ${r.edns.version} udp ${r.edns.udp} flags [${[...r.edns.flags].sort().join(' ')}]` : 'none');
    if (a.status !== 'NO_RESPONSE' && b.status !== 'NO_RESPONSE' && opt(a) !== opt(b)) d.push(`OPT: fedns=${opt(a)} knot=${opt(b)}`);
    if (a.status === 'NO_RESPONSE' || b.status === 'NO_RESPONSE') d.push(`no response: fedns=${a.error ?? '-'} knot=${b.error ?? '-'}`);
    if (d.length) {
      byKind.set(q.kind, (byKind.get(q.kind) ?? 0) + 1);
      diffs.push(`${q.name} ${q.type}${q.tcp ? ' +tcp' : ''}${q.args ? ` ${q.args.join(' ')}` : ''} [${q.kind}]\n    ${d.join('\n    ')}\n    fedns: ${summarise(a)}\n    knot:  ${summarise(b)}`);
    }
  });
  console.log(
    `${corpus.length} queries to each server in ${Date.now() - started} ms; ${diffs.length} differ; ` +
      `${truncatedCount} truncated on both sides (sections not compared; ${truncatedDiffering} of them carry different partial content)`,
  );
  if (diffs.length) {
    console.log(`differences by kind: ${JSON.stringify(Object.fromEntries(byKind))}\nfirst ${Math.min(30, diffs.length)}:\n${diffs.slice(0, 30).join('\n')}`);
  }
  expect(diffs.slice(0, 30)).toEqual([]);

  return ours;
}

describe.skipIf(!ready)('fedns vs knotd: failover and weighted narrow answers, never the zone', () => {
  let fedns: FednsProcess;
  let knot: KnotPeer;
  let copy: ReturnType<typeof demoCopy> | undefined;
  const WEB = ['192.0.2.20', '198.51.100.20'];
  const DB = { alpha: ['192.0.2.101', '192.0.2.102'], charlie: ['203.0.113.101', '203.0.113.102'] };

  beforeAll(async () => {
    copy = demoCopy(testListen);
    for (const file of ['alpha/services.yaml', 'bravo/services.yaml']) annotate(copy.dir, file, 'shop/web', '{ fedns.io/policy: failover, fedns.io/failover: "bravo,alpha" }');
    for (const file of ['alpha/db.yaml', 'charlie/services.yaml']) annotate(copy.dir, file, 'data/db', '{ fedns.io/policy: weighted, fedns.io/weights: "alpha=3,charlie=1" }');
    writeFileSync(join(copy.dir, 'demo', 'alpha', 'zz-big.yaml'), bigService('{}'));
    ({ fedns, knot } = await startPair(copy));
  });

  afterAll(async () => {
    await Promise.all([fedns?.stop(), knot?.stop()]);
    copy?.cleanup();
  });

  it('transfers the same zone as knotd (AXFR): every address of every cluster', async () => {
    const { diffs } = await axfrDiffs(fedns, knot);
    expect(diffs).toEqual([]);
  });

  it('answers A/AAAA with the subset the policy names, to a client in no client network too', async () => {
    const a = (r: DigResult) => r.answer.filter((x) => x.type === 'A' || x.type === 'AAAA').map((x) => x.data).sort();
    const ask = (port: number, name: string, type: string) => dig(['@127.0.0.1', '-p', String(port), '+norec', name, type]);
    expect(a(await ask(knot.port, 'web.shop.fed.example.com', 'A'))).toEqual(WEB);
    expect(a(await ask(fedns.port, 'web.shop.fed.example.com', 'A'))).toEqual(['198.51.100.20']);
    expect(a(await ask(fedns.port, 'web.shop.fed.example.com', 'AAAA'))).toEqual(['2001:db8:b::20']);
    expect(a(await ask(knot.port, 'db.data.fed.example.com', 'A'))).toEqual([...DB.alpha, ...DB.charlie]);
    const seen = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const got = JSON.stringify(a(await ask(fedns.port, 'db.data.fed.example.com', 'A')));
      seen.set(got, (seen.get(got) ?? 0) + 1);
    }
    // Both clusters drawn (weights 3:1; missing one in 40 draws: 0.75^40, about 1e-5), nothing else.
    expect([...seen.keys()].sort()).toEqual([JSON.stringify(DB.alpha), JSON.stringify(DB.charlie)]);
  });
});
