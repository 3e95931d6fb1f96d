/**
 * fedns as the hidden primary of standard secondaries (issue 5): Knot DNS, NSD and BIND each
 * transfer the federation zone from fedns, follow changes of a member cluster through NOTIFY +
 * IXFR, and then answer a query corpus exactly as fedns does. Knot and NSD also do all of it with
 * TSIG while fedns requires TSIG (signed SOA/IXFR/AXFR requests, signed NOTIFY), on a zone made
 * bigger by a programmatic "bulk" cluster (1,500 services) so that its AXFR spans ~30 signed
 * messages; that corpus covers the demo names, the bulk ENTs and the first ten bulk services.
 * (BIND with TSIG: see SCENARIOS.)
 *
 * Per secondary: an in-process fedns serving the demo federation (clusters read from a scratch copy
 * of config/demo, so editing a manifest is a member-cluster change) with transfer.allow
 * [127.0.0.1] and transfer.notify pointing at the secondary. The SOA refresh stays at 3600 s, so a
 * change reaching the secondary within seconds can only have come through NOTIFY.
 *
 * Comparison (test/support/dig.ts compareResults): rcode, every header flag (QR AA TC RD RA AD CD),
 * answer, authority and additional sections as multisets including TTLs, for every query of the
 * corpus built by test/support/corpus.ts from the zone fedns serves (every owner x A/AAAA/SRV/CNAME/
 * TXT/NS/SOA/MX/ANY/PTR/CAA, case variants, empty non-terminals, NXDOMAIN shapes, apex, glue,
 * out-of-zone names, EDNS variations, a TCP subset). Exclusions, all of them legitimate policy
 * differences of the secondary and each one checked for what it still must satisfy:
 *  - ANY (every server): fedns answers one RRset (RFC 8482); Knot and BIND return every RRset of the
 *    name, NSD one RRset too but maybe another one (the SOA at the apex, where fedns gives the NS).
 *    Checked: rcode, flags, authority; each RRset either server answers is a whole RRset of the zone
 *    at that name; fedns answers exactly one, the secondary at least one, when the name has data.
 *  - ADDITIONAL section, NSD, every query: with `minimal-responses: yes` (the only NSD setting that
 *    keeps the NS RRset out of the authority section of positive answers, as fedns does) NSD adds no
 *    addresses for SRV targets (it still adds the glue of the apex NS). Checked: rcode, flags, answer,
 *    authority in full; every additional record NSD sends fedns sends too; every additional record
 *    fedns sends is one of the zone's own A/AAAA records of a name its answer/authority points at.
 *  - ADDITIONAL section, BIND, only UDP queries with EDNS buffer size 512 (corpus kind
 *    "srv-bufsize512"): BIND sends no additional data then, even when it would fit (fedns and Knot
 *    do). Checked as for NSD. Every other BIND answer (`minimal-responses no-auth`) and every Knot
 *    answer is compared in full, additional section included.
 * FEDNS_SHOW_SECONDARY_OUTPUT=1 prints each secondary's log (transfers, NOTIFYs) after its tests.
 *
 * Nothing else is excluded: TC (dig is not told to ignore it), TTLs, negative answers' SOA, case
 * of the question, REFUSED for names outside the zone are all compared for all three.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { masterFile } from '../../src/zone/masterfile.js';
import { buildCorpus, corpusSummary, parseZoneText, type CorpusQuery } from '../support/corpus.js';
import { compareResults, digMany, digManyReasking, rrKey, summarise, type DigResult } from '../support/dig.js';
import { freePort, requirePeer } from '../support/peers.js';
import { requireSecondary, startSecondary, type Secondary, type SecondaryKind, type TsigSpec } from '../support/secondaries.js';
import { addCluster, API_SERVICE, fillCluster, startPrimary, writeAtomic, ZONE, type Primary } from './harness.js';

const hasDig = requirePeer('dig');
const SEED = Number(process.env.FEDNS_CORPUS_SEED ?? 5);
const FLAGS = ['qr', 'aa', 'tc', 'rd', 'ra', 'ad', 'cd'];
const TSIG: TsigSpec = { name: 'xfr-key.', secret: 'ZmVkbnMtdGVzdC10c2lnLXNlY3JldC0wMTIzNDU2Nzg5' };

/**
 * The member-cluster change: in cluster alpha (its manifest file rewritten), nginx gets a new
 * load-balancer address and a new service shop/api appears.
 */
function changeAlpha(p: Primary): void {
  const file = join(p.dir, 'demo', 'alpha', 'services.yaml');
  const text = readFileSync(file, 'utf8');
  expect(text).toContain('192.0.2.10 }');
  writeAtomic(file, text.replace('192.0.2.10 }', '192.0.2.77 }').replace(/\s*$/, '\n') + API_SERVICE);
}

function zoneHasChange(text: string): boolean {
  return text.includes('nginx.default.fed.example.com.\t30\tIN\tA\t192.0.2.77') && text.includes('api.shop.fed.example.com.\t30\tIN\tA\t192.0.2.60');
}

/** Every record of the zone as an rrKey (for membership checks). */
function zoneKeys(zoneText: string): Set<string> {
  return new Set(parseZoneText(zoneText).records.map((r) => rrKey({ name: r.name, ttl: r.ttl, class: 'IN', type: r.type, data: r.data })));
}

/** The zone's RRsets: "owner TYPE" -> sorted rrKeys. */
function zoneRRsets(zoneText: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const r of parseZoneText(zoneText).records) {
    const k = `${r.name} ${r.type}`;
    m.set(k, [...(m.get(k) ?? []), rrKey({ name: r.name, ttl: r.ttl, class: 'IN', type: r.type, data: r.data })].sort());
  }
  return m;
}

/**
 * ANY (RFC 8482): rcode, flags and authority as usual. Every RRset either server answers must be a
 * whole RRset of the zone at that name; fedns answers exactly one (its minimal-ANY policy); the
 * secondary answers at least one when the name has data (Knot, BIND: all of them; NSD: one).
 */
function compareAny(a: DigResult, b: DigResult, label: string, rrsets: Map<string, string[]>): string[] {
  const diffs = compareResults(a, b, { labels: ['fedns', label], flags: FLAGS, sections: ['authority'] });
  const setsOf = (r: DigResult) => {
    const m = new Map<string, string[]>();
    for (const rr of r.answer) {
      const k = `${rr.name} ${rr.type}`;
      m.set(k, [...(m.get(k) ?? []), rrKey(rr)].sort());
    }
    return m;
  };
  const ours = setsOf(a);
  const theirs = setsOf(b);
  for (const [who, sets] of [['fedns', ours], [label, theirs]] as const) {
    for (const [k, rrs] of sets) {
      if (rrsets.get(k)?.join('|') !== rrs.join('|')) diffs.push(`ANY: ${who} answered ${k} = ${rrs.join(' | ')}, not the zone's RRset`);
    }
  }
  if (theirs.size === 0 && ours.size !== 0) diffs.push(`ANY: ${label} has no answer, fedns has ${[...ours.keys()].join(', ')}`);
  if (theirs.size > 0 && ours.size !== 1) diffs.push(`ANY: fedns answered ${ours.size} RRsets, expected exactly one`);
  return diffs;
}

/**
 * For a secondary whose policy leaves out (some) additional addresses: NSD (minimal-responses: yes,
 * none for SRV targets) and BIND on UDP queries with EDNS buffer 512 (no additional data at all,
 * even when it would fit). Rcode, flags, answer and authority must match; what the secondary does
 * put in the additional section (e.g. NSD: glue of the apex NS) fedns must have too; and every
 * additional record fedns has must be one of the zone's own A/AAAA records of a name its answer or
 * authority section points at (SRV target, NS name).
 */
function compareOptionalAdditional(a: DigResult, b: DigResult, label: string, zone: Set<string>): string[] {
  const diffs = compareResults(a, b, { labels: ['fedns', label], flags: FLAGS, sections: ['answer', 'authority'] });
  const targets = new Set<string>();
  for (const rr of [...a.answer, ...a.authority]) {
    if (rr.type === 'SRV') targets.add(rr.data.split(' ')[3].toLowerCase());
    if (rr.type === 'NS') targets.add(rr.data.toLowerCase());
  }
  const ours = new Set(a.additional.map((r) => rrKey(r)));
  for (const rr of b.additional) if (!ours.has(rrKey(rr))) diffs.push(`additional: only in ${label}: ${rrKey(rr)}`);
  for (const rr of a.additional) {
    if (!['A', 'AAAA'].includes(rr.type) || !targets.has(rr.name) || !zone.has(rrKey(rr))) diffs.push(`additional: fedns has unexpected ${rrKey(rr)}`);
  }
  return diffs;
}

interface Scenario {
  kind: SecondaryKind;
  tsig?: boolean;
}

/** Each secondary plainly and with TSIG (BIND signs its SOA refresh query too, so that answer is signed). */
const SCENARIOS: Scenario[] = [
  { kind: 'knot' },
  { kind: 'nsd' },
  { kind: 'bind' },
  { kind: 'knot', tsig: true },
  { kind: 'nsd', tsig: true },
  { kind: 'bind', tsig: true },
];

for (const sc of SCENARIOS) {
  const available = hasDig && requireSecondary(sc.kind);
  const title = `${sc.kind} as a secondary of fedns${sc.tsig ? ' with TSIG (fedns requires it)' : ''}`;

  describe.skipIf(!available)(title, () => {
    let primary: Primary;
    let secondary: Secondary;
    let first: number;

    beforeAll(async () => {
      const port = await freePort();
      primary = await startPrimary({
        demo: true,
        transfer: {
          allow: ['127.0.0.1'],
          notify: [`127.0.0.1:${port}`],
          notifyDelay: 0.1,
          ...(sc.tsig ? { tsig: [{ name: TSIG.name, secret: TSIG.secret }], requireTsig: true, notifyKey: TSIG.name } : {}),
        },
      });
      if (sc.tsig) {
        // A zone of a few hundred KB: the AXFR spans many messages, each signed (RFC 8945 5.3.1).
        fillCluster(addCluster(primary, 'bulk', 'us-east', 'us-east-c'), 0, 1500);
      }
      first = (await primary.settled()).serial;
      secondary = await startSecondary(sc.kind, { zone: ZONE, primaryPort: primary.port, port, tsig: sc.tsig ? TSIG : undefined });
    });

    afterAll(async () => {
      if (process.env.FEDNS_SHOW_SECONDARY_OUTPUT === '1' && secondary) console.log(`--- ${secondary.name} output ---\n${secondary.output()}`);
      await secondary?.stop();
      await primary?.stop();
    });

    it('gets the zone by AXFR when it starts (its SOA serial = fedns serial)', async () => {
      expect(await secondary.waitForSerial(first, 20_000)).toBe(first);
      expect(primary.zone().serial).toBe(first);
      const full = (await primary.transfers('AXFR', 'full')) + (await primary.transfers('IXFR', 'full'));
      expect(full).toBeGreaterThanOrEqual(1);
      if (sc.tsig) {
        // A multi-message signed AXFR (logged once sent).
        await primary.waitForLog('zone transfer', (r) => r.kind === 'full' && Number(r.messages) > 1 && r.complete === true);
      }
    });

    it('follows a member-cluster change through NOTIFY and IXFR', async () => {
      const ixfrBefore = await primary.transfers('IXFR', 'incremental');
      const fullBefore = (await primary.transfers('AXFR', 'full')) + (await primary.transfers('IXFR', 'full'));
      const t0 = Date.now();
      changeAlpha(primary);
      const changed = await primary.waitForZone((z) => z.serial !== first && zoneHasChange(masterFile(z)), 10_000, 'the alpha change');
      // Bounded wait, far inside the SOA refresh (3600 s): only the NOTIFY can have triggered it.
      const got = await secondary.waitForSerial(changed.serial, 20_000);
      const elapsed = Date.now() - t0;
      // The file edit may be read in one or more publishes; the secondary ends on fedns's serial.
      await primary.settled(300);
      const now = primary.zone().serial;
      expect(await secondary.waitForSerial(now, 20_000)).toBe(now);
      console.log(`${title}: change -> secondary serial ${got} in ${elapsed} ms`);

      // Served as IXFR "incremental" from the journal (metric and log), after a NOTIFY it acknowledged.
      expect(await primary.transfers('IXFR', 'incremental')).toBeGreaterThan(ixfrBefore);
      await primary.waitForLog('zone transfer', (r) => r.type === 'IXFR' && r.kind === 'incremental' && r.clientSerial === first);
      // ... and applied: the secondary did not fall back to a full transfer.
      expect((await primary.transfers('AXFR', 'full')) + (await primary.transfers('IXFR', 'full'))).toBe(fullBefore);
      expect(await primary.notifies('sent')).toBeGreaterThanOrEqual(1);
      expect(await primary.notifies('acknowledged')).toBeGreaterThanOrEqual(1);
      // Nothing was refused (with TSIG: every request of the secondary was signed and verified).
      expect(primary.logs.find('zone transfer refused')).toEqual([]);
      expect(primary.logs.find('zone transfer refused: TSIG')).toEqual([]);
      expect(await primary.transfers('IXFR', 'badtsig')).toBe(0);
      expect(await primary.transfers('AXFR', 'badtsig')).toBe(0);
    });

    it('answers a query corpus exactly as fedns does', async () => {
      const zoneText = masterFile(primary.zone());
      expect(zoneHasChange(zoneText)).toBe(true);
      expect(await secondary.serial()).toBe(primary.zone().serial);
      // With the bulk cluster (TSIG), the corpus covers the demo names and the first bulk services.
      const corpusZone = zoneText
        .split('\n')
        .filter((l) => !/^(?:_http\._tcp\.)?svc(\d+)\.ns\d+\./.test(l) || Number(/svc(\d+)/.exec(l)![1]) < 10)
        .join('\n');
      const corpus: CorpusQuery[] = buildCorpus(corpusZone, { seed: SEED });
      const summary = corpusSummary(corpus);
      expect(corpus.length).toBeGreaterThanOrEqual(200);
      for (const kind of ['owner', 'nodata', 'cname-fallback', 'case', 'ent', 'nxdomain-deep', 'nxdomain-sibling', 'apex-owner', 'glue-owner']) {
        expect(summary[kind] ?? 0, kind).toBeGreaterThan(0);
      }
      for (const t of ['A', 'AAAA', 'SRV', 'CNAME', 'TXT']) expect(corpus.some((q) => q.type === t)).toBe(true);

      const rrsets = zoneRRsets(zoneText);
      const keys = zoneKeys(zoneText);
      // A lost UDP packet on a busy machine is not a difference: dig may try 3 times.
      const digArgs = ['+tries=3', '+time=3'];
      const [ours, theirs] = await Promise.all([digMany('127.0.0.1', primary.port, corpus, digArgs), digMany('127.0.0.1', secondary.port, corpus, digArgs)]);
      const diffs: string[] = [];
      const byKind = new Map<string, number>();
      corpus.forEach((q, i) => {
        const a = ours[i];
        const b = theirs[i];
        let d: string[];
        if (q.type === 'ANY') d = compareAny(a, b, sc.kind, rrsets);
        else if (sc.kind === 'nsd' || (sc.kind === 'bind' && !q.tcp && q.args?.includes('+bufsize=512'))) d = compareOptionalAdditional(a, b, sc.kind, keys);
        else d = compareResults(a, b, { labels: ['fedns', sc.kind], flags: FLAGS });
        if (a.status === 'NO_RESPONSE' || b.status === 'NO_RESPONSE') d.push(`no response: fedns=${a.error ?? '-'} ${sc.kind}=${b.error ?? '-'}`);
        if (d.length) {
          byKind.set(q.kind, (byKind.get(q.kind) ?? 0) + 1);
          diffs.push(`${q.name} ${q.type}${q.tcp ? ' +tcp' : ''}${q.args ? ` ${q.args.join(' ')}` : ''} [${q.kind}]\n    ${d.join('\n    ')}\n    fedns: ${summarise(a)}\n    ${sc.kind}: ${summarise(b)}`);
        }
      });
      if (diffs.length) console.log(`${title}: ${diffs.length} of ${corpus.length} differ; by kind ${JSON.stringify(Object.fromEntries(byKind))}\n${diffs.slice(0, 30).join('\n')}`);
      expect(diffs.slice(0, 30)).toEqual([]);

      // The comparison compared something real, and the zone did not move under it.
      const rcodes = new Set(ours.map((r) => r.status));
      for (const s of ['NOERROR', 'NXDOMAIN', 'REFUSED']) expect(rcodes.has(s), s).toBe(true);
      expect(ours.some((r) => r.additional.length > 0)).toBe(true);
      expect(await secondary.serial()).toBe(primary.zone().serial);
    });

    it('follows an SOA change made by a reload, incrementally: a new serial, the new SOA served', async () => {
      const before = primary.zone().serial;
      const c = primary.fedns.config;
      await primary.fedns.reload({ ...c, soa: { ...c.soa, refresh: 1800, minimum: 20 } });
      const after = primary.zone().serial;
      expect(after).not.toBe(before);
      expect(await secondary.waitForSerial(after, 20_000)).toBe(after);
      const soa = [{ name: ZONE, type: 'SOA' }];
      const [[ours], [theirs]] = await Promise.all([digManyReasking('127.0.0.1', primary.port, soa), digManyReasking('127.0.0.1', secondary.port, soa)]);
      expect(compareResults(ours, theirs, { labels: ['fedns', sc.kind], flags: FLAGS })).toEqual([]);
      expect(ours.answer.map((r) => r.data).join(' ')).toMatch(/ 1800 600 86400 20$/);
      await primary.waitForLog('zone transfer', (r) => r.type === 'IXFR' && r.kind === 'incremental' && r.clientSerial === before);
    });
  });
}
