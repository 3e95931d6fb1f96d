/**
 * Query corpus for differential tests, generated from a zone in master-file format (as printed
 * by `fedns zone`: one record per line, absolute owner names, no $TTL/relative names needed).
 *
 *   const corpus = buildCorpus(zoneText, { seed: 1 });
 *   const fedns = await digMany('127.0.0.1', port, corpus);
 *
 * Every query carries a `kind` saying why it is in the corpus, so a failure report can be
 * grouped and a class of queries excluded precisely.
 */
import type { DigQuery } from './dig.js';

/** Small, fast, seedable PRNG (mulberry32): the same seed gives the same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ZoneRecord {
  /** Owner, lowercase, absolute. */
  name: string;
  ttl: number;
  type: string;
  data: string;
}

/** Parses the simple master-file subset `fedns zone` prints (absolute names, explicit TTL and class). */
export function parseZoneText(text: string): { origin: string; records: ZoneRecord[] } {
  let origin = '';
  const records: ZoneRecord[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/;.*$/, '').trim();
    if (!line) continue;
    const o = /^\$ORIGIN\s+(\S+)/i.exec(line);
    if (o) {
      origin = o[1].toLowerCase();
      continue;
    }
    if (line.startsWith('$')) continue;
    const m = /^(\S+)\s+(\d+)\s+IN\s+(\S+)\s+(.*)$/i.exec(line);
    if (!m) throw new Error(`parseZoneText: cannot read "${raw}"`);
    records.push({ name: m[1].toLowerCase(), ttl: Number(m[2]), type: m[3].toUpperCase(), data: m[4].trim() });
  }
  const soa = records.find((r) => r.type === 'SOA');
  if (!soa) throw new Error('parseZoneText: no SOA record');
  return { origin: origin || soa.name, records };
}

export interface CorpusQuery extends DigQuery {
  /** Why the query is in the corpus (e.g. "owner", "ent", "nxdomain-deep", "out-of-zone"). */
  kind: string;
}

export interface CorpusOptions {
  seed?: number;
  /** About one UDP query in n is repeated over TCP (default 4; 0 = none). */
  tcpEvery?: number;
}

/** Query types asked at every owner name (most of them NODATA somewhere). */
export const OWNER_TYPES = ['A', 'AAAA', 'SRV', 'CNAME', 'TXT', 'NS', 'SOA', 'MX', 'ANY', 'PTR', 'CAA'];
const ENT_TYPES = ['A', 'AAAA', 'SOA', 'NS', 'TXT', 'SRV', 'ANY'];

function parentOf(name: string): string {
  const i = name.indexOf('.');
  return i < 0 || i === name.length - 1 ? '.' : name.slice(i + 1);
}

function isBelow(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/** A random upper/lower mix of `name` that differs from the lowercase form (when it has letters). */
export function caseVariant(name: string, rand: () => number): string {
  if (!/[a-z]/.test(name)) return name;
  for (;;) {
    let out = '';
    for (const c of name) out += /[a-z]/.test(c) && rand() < 0.5 ? c.toUpperCase() : c;
    if (out !== name) return out;
  }
}

function randomLabel(rand: () => number, len = 6 + Math.floor(rand() * 6)): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = 'x';
  for (let i = 1; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}

/** The corpus (deduplicated by name/type/transport/args), UDP first then the TCP repeats. */
export function buildCorpus(zoneText: string, opts: CorpusOptions = {}): CorpusQuery[] {
  const rand = prng(opts.seed ?? 1);
  const { origin, records } = parseZoneText(zoneText);
  const owners = [...new Set(records.map((r) => r.name))];
  const ownerSet = new Set(owners);
  const typesAt = new Map<string, Set<string>>();
  for (const r of records) {
    if (!typesAt.has(r.name)) typesAt.set(r.name, new Set());
    typesAt.get(r.name)!.add(r.type);
  }
  const out: CorpusQuery[] = [];
  const seen = new Set<string>();
  const add = (kind: string, name: string, type: string, args?: string[]) => {
    const key = `${name} ${type} ${args?.join(' ') ?? ''}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ kind, name, type, ...(args ? { args } : {}) });
  };

  // In-zone name server names (glue).
  const glue = new Set(
    records.filter((x) => x.type === 'NS' && x.name === origin).map((x) => x.data.toLowerCase()).filter((n) => isBelow(n, origin)),
  );

  // 1. Every owner name x every relevant type: positive answers and NODATA.
  for (const o of owners) {
    const has = typesAt.get(o)!;
    const cname = has.has('CNAME');
    for (const t of OWNER_TYPES) {
      const kind = t === 'ANY' ? 'any' : cname && t !== 'CNAME' ? 'cname-fallback' : has.has(t) ? 'owner' : 'nodata';
      add(o === origin ? `apex-${kind}` : glue.has(o) ? `glue-${kind}` : kind, o, t);
    }
  }

  // 2. Case variants: the types each owner has, plus one NODATA type, with mixed case.
  for (const o of owners) {
    for (const t of [...typesAt.get(o)!, 'TXT']) add('case', caseVariant(o, rand), t);
    add('case', caseVariant(o, rand), 'A');
  }

  // 3. Empty non-terminals: every ancestor of an owner (below the apex) without records.
  const ents = new Set<string>();
  for (const o of owners) {
    for (let p = parentOf(o); p !== origin && isBelow(p, origin); p = parentOf(p)) if (!ownerSet.has(p)) ents.add(p);
  }
  for (const e of ents) {
    for (const t of ENT_TYPES) add('ent', e, t);
    add('ent-case', caseVariant(e, rand), 'A');
  }

  // 4. NXDOMAIN: one label too deep under every owner and ENT, and siblings that do not exist.
  for (const n of [...owners, ...ents]) {
    add('nxdomain-deep', `${randomLabel(rand)}.${n}`, 'A');
    if (n === origin) continue;
    const sib = `${randomLabel(rand)}.${parentOf(n)}`;
    if (!ownerSet.has(sib) && !ents.has(sib)) add('nxdomain-sibling', sib, rand() < 0.5 ? 'AAAA' : 'A');
  }
  // Deep under a CNAME (no DNAME semantics: NXDOMAIN), SRV shapes that do not exist, a wildcard
  // label that is just a label here.
  for (const o of owners.filter((n) => typesAt.get(n)!.has('CNAME')).slice(0, 6)) add('nxdomain-under-cname', `a.${o}`, 'A');
  for (const o of owners.filter((n) => typesAt.get(n)!.has('A')).slice(0, 8)) {
    add('nxdomain-srv', `_nope._tcp.${o}`, 'SRV');
    add('nxdomain-srv', `_http._udp.${o}`, 'SRV');
  }
  add('nxdomain-wildcard-label', `*.${origin}`, 'A');
  add('nxdomain-deep', `a.b.c.d.e.f.${origin}`, 'TXT');

  // 5. Apex: SOA/NS and friends, in several cases.
  for (const t of ['SOA', 'NS', 'A', 'AAAA', 'MX', 'TXT', 'DNSKEY', 'DS', 'CAA', 'HTTPS']) add('apex', origin, t);
  add('apex-case', caseVariant(origin, rand), 'SOA');
  add('apex-case', caseVariant(origin, rand), 'NS');

  // 6. Glue: in-zone name server names.
  for (const ns of glue) {
    for (const t of ['A', 'AAAA', 'ANY', 'TXT']) add('glue', ns, t);
    add('glue-case', caseVariant(ns, rand), 'A');
  }

  // 7. SRV with EDNS variations (the additional section must fit or be cut the same way).
  for (const o of owners.filter((n) => typesAt.get(n)!.has('SRV'))) {
    add('srv-noedns', o, 'SRV', ['+noedns']);
    add('srv-bufsize512', o, 'SRV', ['+bufsize=512']);
    add('srv-dnssec', o, 'SRV', ['+dnssec']);
  }
  for (const o of owners.filter((n) => typesAt.get(n)!.has('CNAME')).slice(0, 4)) add('cname-noedns', o, 'A', ['+noedns']);
  add('apex-noedns', origin, 'NS', ['+noedns']);

  // 8. Big answers (an RRset, reached directly or through CNAMEs, of 8+ records): the classic
  // 512-byte limit, the EDNS limit and TCP. "+ignore" keeps dig from retrying a TC=1 answer
  // over TCP, so the truncated UDP answer itself is compared.
  const rrsetSize = new Map<string, number>();
  const cnameOf = new Map<string, string>();
  for (const r of records) {
    rrsetSize.set(`${r.name} ${r.type}`, (rrsetSize.get(`${r.name} ${r.type}`) ?? 0) + 1);
    if (r.type === 'CNAME') cnameOf.set(r.name, r.data.toLowerCase());
  }
  const finalName = (n: string) => {
    for (let i = 0; i < 8 && cnameOf.has(n); i++) n = cnameOf.get(n)!;
    return n;
  };
  for (const o of owners) {
    for (const t of ['A', 'AAAA', 'SRV']) {
      if ((rrsetSize.get(`${finalName(o)} ${t}`) ?? 0) < 8) continue;
      for (const args of [['+noedns', '+ignore'], ['+bufsize=512', '+ignore'], ['+ignore'], ['+bufsize=4096', '+ignore']]) add('big', o, t, args);
      add('big-tcp', o, t, ['+bufsize=512']); // TCP below (tcp: true): never truncated
    }
  }

  // 9. Outside the zone: REFUSED (the server is not a resolver).
  const base = origin.replace(/\.$/, '');
  const tld = base.split('.').pop()!;
  for (const [n, t] of [
    ['.', 'SOA'],
    ['.', 'NS'],
    [`${tld}.`, 'SOA'],
    [`${tld}.`, 'A'],
    ['example.org.', 'A'],
    ['example.net.', 'SOA'],
    [`x${base}.`, 'A'],
    [`${base}.org.`, 'A'],
    [`fed.${base}.org.`, 'A'],
    [`nginx.default.fed.${base.split('.')[0]}.net.`, 'A'],
    ['localhost.', 'A'],
    ['1.0.0.127.in-addr.arpa.', 'PTR'],
    [`${caseVariant(`www.example.org.`, rand)}`, 'AAAA'],
  ] as const) {
    add('out-of-zone', n, t);
  }

  // 10. TCP: about one query in n again over TCP (and every big answer).
  const every = opts.tcpEvery ?? 4;
  for (const q of out) if (q.kind === 'big-tcp') q.tcp = true;
  if (every > 0) {
    const udp = out.filter((q) => !q.tcp);
    // Random (seeded) rather than every n-th, so interleaved kinds all get TCP coverage; the
    // apex and out-of-zone names always.
    for (const q of udp) {
      if (rand() < 1 / every || /^(apex|out-of-zone)/.test(q.kind)) out.push({ ...q, kind: `${q.kind}/tcp`, tcp: true });
    }
  }
  return out;
}

/** Counts per kind, for reports. */
export function corpusSummary(corpus: CorpusQuery[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const q of corpus) out[q.kind] = (out[q.kind] ?? 0) + 1;
  return out;
}
