/**
 * Run `dig` and parse its (text) output into structured results, plus a differential
 * comparison helper.
 *
 *   const r = await dig(['@127.0.0.1', '-p', String(port), 'www.example.com', 'A']);
 *   const rs = await digMany('127.0.0.1', port, [{ name: 'a.example.com', type: 'A' }, ...]);
 *   expect(compareResults(fednsResult, knotResult, { ignoreTtl: true })).toEqual([]);
 *
 * dig accepts many queries on one command line; digMany uses that (in chunks) so a corpus of
 * hundreds of queries needs only a handful of dig processes. Results come back in query order;
 * a query that got no reply yields status "NO_RESPONSE" with `error` set.
 */
import { execFile } from 'node:child_process';
import { findBinary } from './peers.js';

export interface RR {
  /** Owner name, lowercased, fully qualified (trailing dot). */
  name: string;
  ttl: number;
  class: string;
  /** Upper-case mnemonic, e.g. "A", "SRV", "TYPE65534". */
  type: string;
  /** RDATA as printed by dig, whitespace collapsed (outside double quotes), trimmed. */
  data: string;
}

export interface Question {
  name: string;
  class: string;
  type: string;
}

export interface Edns {
  version: number;
  udp: number;
  /** EDNS header flags, e.g. {"do"}; MBZ bits are reported as "MBZ:0x..." */
  flags: Set<string>;
}

export interface DigResult {
  /** RCODE mnemonic (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...) or "NO_RESPONSE". */
  status: string;
  opcode?: string;
  id?: number;
  /** Header flags: qr aa tc rd ra ad cd. */
  flags: Set<string>;
  /** Section counts from the header line (ADDITIONAL includes the OPT record). */
  counts?: { query: number; answer: number; authority: number; additional: number };
  question?: Question;
  answer: RR[];
  authority: RR[];
  additional: RR[];
  edns?: Edns;
  /** Text after "EDE: " of the first Extended DNS Error, e.g. "14 (Not Ready)" or "15 (Blocked): (reason)". */
  ede?: string;
  edeCode?: number;
  /** Other OPT pseudosection lines (NSID, COOKIE, ...), verbatim without the leading "; ". */
  ednsOptions: string[];
  /** Transport dig reports for the final answer. */
  transport?: 'UDP' | 'TCP';
  /** e.g. "127.0.0.1#5300(127.0.0.1)". */
  server?: string;
  msgSize?: number;
  queryTimeMs?: number;
  /** True when dig saw TC=1 over UDP and retried over TCP (the result is the TCP answer). */
  retriedOverTcp: boolean;
  /** ";;"-lines that are not part of the message (warnings, errors), without the ";; ". */
  notes: string[];
  /** For NO_RESPONSE: the error (e.g. "communications error to 127.0.0.1#5300: timed out"). */
  error?: string;
  /** For zone transfers (AXFR/IXFR) parsed by parseDigOutput/dig: true; all records are in `answer`. */
  xfr?: boolean;
  /** This result's slice of dig's output. */
  raw: string;
}

export interface DigQuery {
  name: string;
  type: string;
  /**
   * true: query over TCP (+tcp). Otherwise UDP (+notcp) - note dig 9.18 would otherwise use TCP
   * for qtype ANY. (dig still retries over TCP on TC=1 unless "+ignore" is given.)
   */
  tcp?: boolean;
  /** Extra per-query dig options, e.g. ["+norec", "+dnssec", "+bufsize=512"]. */
  args?: string[];
}

/**
 * Options always passed (globally, before the first query) to make output stable & parseable.
 * Later options in the argument list override them (e.g. "+time=5").
 */
export const DIG_DEFAULT_ARGS: readonly string[] = [
  '+nocookie',
  '+tries=1',
  '+time=2',
  '+nocmd',
  '+noidnout',
  '+nosplit',
  '+nomultiline',
];

function digBinary(): string {
  const bin = findBinary('dig');
  if (!bin) throw new Error("dig is not installed (apt-get install -y dnsutils); guard the test with requirePeer('dig')");
  return bin;
}

function runDig(args: string[], timeoutMs: number): Promise<string> {
  const bin = digBinary();
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      args,
      { maxBuffer: 512 * 1024 * 1024, timeout: timeoutMs, env: { ...process.env, LC_ALL: 'C', IDN_DISABLE: '1' } },
      (err, stdout, stderr) => {
        // dig exits 9 when (some) query got no reply: that is a result, not a harness failure.
        const code: unknown = err ? (err as { code?: unknown }).code : 0;
        if (err && code !== 9) {
          reject(
            new Error(
              `dig ${args.join(' ')} failed (${err.message.split('\n')[0]})\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
            ),
          );
          return;
        }
        resolve(stdout + (stderr ? `\n${stderr}` : ''));
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/** Collapse whitespace runs outside double-quoted strings; trim. */
export function normaliseData(data: string): string {
  let out = '';
  let inQuote = false;
  let pendingSpace = false;
  for (let i = 0; i < data.length; i++) {
    const c = data[i];
    if (inQuote) {
      out += c;
      if (c === '\\' && i + 1 < data.length) out += data[++i];
      else if (c === '"') inQuote = false;
      continue;
    }
    if (/\s/.test(c)) {
      pendingSpace = out.length > 0;
      continue;
    }
    if (pendingSpace) out += ' ';
    pendingSpace = false;
    out += c;
    if (c === '"') inQuote = true;
  }
  return out;
}

function normaliseName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n : `${n}.`;
}

const CLASS_RE = /^(IN|CH|CHAOS|HS|HESIOD|NONE|ANY|CLASS\d+)$/i;

/** Parse one RR line as printed by dig ("name ttl class type rdata"). */
export function parseRR(line: string): RR | undefined {
  const m = /^(\S+)\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line.trim());
  if (!m) return undefined;
  let [, name, ttl, cls, type, rest] = m;
  if (!CLASS_RE.test(cls)) {
    // +noclass style output: "name ttl type rdata"
    rest = rest === undefined ? '' : `${type} ${rest}`;
    type = cls;
    cls = 'IN';
  }
  return {
    name: normaliseName(name),
    ttl: Number(ttl),
    class: cls.toUpperCase(),
    type: type.toUpperCase(),
    data: normaliseData(rest ?? ''),
  };
}

type Section = 'opt' | 'question' | 'answer' | 'authority' | 'additional' | undefined;

function emptyResult(raw: string): DigResult {
  return {
    status: 'NO_RESPONSE',
    flags: new Set(),
    answer: [],
    authority: [],
    additional: [],
    ednsOptions: [],
    retriedOverTcp: false,
    notes: [],
    raw,
  };
}

const SECTION_HEADERS: Record<string, Section> = {
  ';; OPT PSEUDOSECTION:': 'opt',
  ';; QUESTION SECTION:': 'question',
  ';; ANSWER SECTION:': 'answer',
  ';; AUTHORITY SECTION:': 'authority',
  ';; ADDITIONAL SECTION:': 'additional',
};

function parseBlock(lines: string[], preamble: string[]): DigResult {
  const r = emptyResult([...preamble, ...lines].join('\n'));
  for (const p of preamble) {
    const t = p.replace(/^;;\s*/, '').trim();
    if (!t) continue;
    if (/^Truncated, retrying in TCP mode/i.test(t)) r.retriedOverTcp = true;
    r.notes.push(t);
  }
  let section: Section;
  for (const rawLine of lines) {
    const line = rawLine.replace(/\s+$/, '');
    if (line === '') continue;
    if (line in SECTION_HEADERS) {
      section = SECTION_HEADERS[line];
      continue;
    }
    let m: RegExpExecArray | null;
    if ((m = /^;; ->>HEADER<<- opcode: ([^,]+), status: ([^,]+), id: (\d+)/.exec(line))) {
      r.opcode = m[1].trim();
      r.status = m[2].trim();
      r.id = Number(m[3]);
      continue;
    }
    if ((m = /^;; flags:([^;]*);\s*QUERY: (\d+), ANSWER: (\d+), AUTHORITY: (\d+), ADDITIONAL: (\d+)/.exec(line))) {
      r.flags = new Set(m[1].trim().split(/\s+/).filter(Boolean));
      r.counts = { query: Number(m[2]), answer: Number(m[3]), authority: Number(m[4]), additional: Number(m[5]) };
      continue;
    }
    if ((m = /^;; Query time: (\d+) (?:msec|usec)/.exec(line))) {
      r.queryTimeMs = line.includes('usec') ? Number(m[1]) / 1000 : Number(m[1]);
      continue;
    }
    if ((m = /^;; SERVER: (\S+)(?: \((UDP|TCP|TLS|HTTPS|HTTP)\))?/.exec(line))) {
      r.server = m[1];
      if (m[2] === 'UDP' || m[2] === 'TCP') r.transport = m[2];
      continue;
    }
    if ((m = /^;; MSG SIZE\s+rcvd: (\d+)/.exec(line))) {
      r.msgSize = Number(m[1]);
      continue;
    }
    if (/^;; (WHEN|Got answer):?/.test(line)) continue;
    if (section === 'opt' && line.startsWith('; ')) {
      const body = line.slice(2);
      if ((m = /^EDNS: version: (\d+), flags:([^;]*);(.*)$/.exec(body))) {
        const flags = new Set(m[2].trim().split(/\s+/).filter(Boolean));
        const mbz = /MBZ: (0x[0-9a-f]+)/i.exec(m[3]);
        if (mbz) flags.add(`MBZ:${mbz[1].toLowerCase()}`);
        const udp = /udp: (\d+)/.exec(m[3]);
        r.edns = { version: Number(m[1]), udp: udp ? Number(udp[1]) : 0, flags };
      } else if ((m = /^EDE: (.*)$/.exec(body))) {
        if (r.ede === undefined) {
          r.ede = m[1].trim();
          const code = /^(\d+)/.exec(r.ede);
          if (code) r.edeCode = Number(code[1]);
        } else {
          r.ednsOptions.push(body);
        }
      } else {
        r.ednsOptions.push(body);
      }
      continue;
    }
    if (section === 'question' && line.startsWith(';') && !line.startsWith(';;')) {
      const parts = line.slice(1).trim().split(/\s+/);
      if (parts.length >= 3) {
        r.question = { name: normaliseName(parts[0]), class: parts[1].toUpperCase(), type: parts[2].toUpperCase() };
      } else if (parts.length === 2) {
        r.question = { name: normaliseName(parts[0]), class: 'IN', type: parts[1].toUpperCase() };
      }
      continue;
    }
    if (line.startsWith(';;')) {
      r.notes.push(line.replace(/^;;\s*/, ''));
      continue;
    }
    if (line.startsWith(';')) continue;
    if (section === 'answer' || section === 'authority' || section === 'additional') {
      const rr = parseRR(line);
      if (rr) r[section].push(rr);
      else r.notes.push(`unparsed: ${line}`);
    }
  }
  return r;
}

function isBanner(line: string): boolean {
  return /^; <<>> DiG /.test(line) || /^; \(\d+ servers? found\)/.test(line) || /^;; global options:/.test(line);
}

/**
 * Split dig output for one or more queries into per-query results, in order.
 * Each query yields either a ";; Got answer:" block or a ";; no servers could be reached" line.
 * Zone-transfer output (no header, ";; XFR size:" trailer or "; Transfer failed.") is returned
 * as a single result with xfr: true.
 */
export function parseDigOutput(text: string): DigResult[] {
  const lines = text.split('\n');
  const results: DigResult[] = [];
  let current: string[] | undefined;
  let currentPreamble: string[] = [];
  let pending: string[] = [];
  const flush = () => {
    if (current) results.push(parseBlock(current, currentPreamble));
    current = undefined;
    currentPreamble = [];
  };
  const looksLikeXfr = !lines.some((l) => l.startsWith(';; Got answer:')) &&
    lines.some((l) => /^;; XFR size:|^; Transfer failed\.|^; Transfer failed/.test(l));
  if (looksLikeXfr) return [parseXfr(text)];

  for (const line of lines) {
    if (isBanner(line)) continue;
    if (line.startsWith(';; Got answer:')) {
      flush();
      current = [line];
      currentPreamble = pending;
      pending = [];
      continue;
    }
    if (/^;; no servers could be reached/.test(line)) {
      flush();
      const errLines = pending.map((l) => l.replace(/^;;\s*/, '').trim()).filter(Boolean);
      const r = emptyResult([...pending, line].join('\n'));
      r.notes = errLines;
      r.error = errLines.find((l) => /error|failed|timed out|refused|unreachable/i.test(l)) ?? 'no servers could be reached';
      results.push(r);
      pending = [];
      continue;
    }
    if (current) {
      current.push(line);
      if (/^;; MSG SIZE/.test(line)) flush();
      continue;
    }
    if (line.trim() !== '') pending.push(line);
  }
  flush();
  return results;
}

function parseXfr(text: string): DigResult {
  const r = emptyResult(text);
  r.xfr = true;
  let failed = false;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\s+$/, '');
    if (!line || isBanner(line)) continue;
    if (/^; Transfer failed/.test(line)) {
      failed = true;
      r.notes.push(line.replace(/^;+\s*/, ''));
      continue;
    }
    let m: RegExpExecArray | null;
    if ((m = /^;; SERVER: (\S+)(?: \((UDP|TCP)\))?/.exec(line))) {
      r.server = m[1];
      if (m[2] === 'UDP' || m[2] === 'TCP') r.transport = m[2];
      continue;
    }
    if (line.startsWith(';')) {
      r.notes.push(line.replace(/^;+\s*/, ''));
      continue;
    }
    const rr = parseRR(line);
    if (rr) r.answer.push(rr);
  }
  r.status = failed ? 'XFR_FAILED' : 'NOERROR';
  return r;
}

// ---------------------------------------------------------------------------------------------
// Running dig
// ---------------------------------------------------------------------------------------------

const LOOPBACK_SERVERS = new Set(['127.0.0.1', 'localhost', '::1']);

/** Tests must only ever query loopback: demand an explicit "@127.0.0.1"-style server argument. */
function assertLoopbackServer(args: string[]): void {
  const servers = args.filter((a) => a.startsWith('@')).map((a) => a.slice(1));
  if (servers.length === 0) {
    throw new Error(`dig: no @server given (dig would use /etc/resolv.conf); pass e.g. "@127.0.0.1": ${args.join(' ')}`);
  }
  const bad = servers.filter((s) => !LOOPBACK_SERVERS.has(s));
  if (bad.length) throw new Error(`dig: refusing to query non-loopback server(s) ${bad.join(', ')}`);
}

/**
 * Run dig with DIG_DEFAULT_ARGS + args; returns the single result. (If the arguments make dig
 * run several queries, the first result is returned - use digMany for batches.)
 */
export async function dig(args: string[], opts: { timeoutMs?: number } = {}): Promise<DigResult> {
  assertLoopbackServer(args);
  const out = await runDig([...DIG_DEFAULT_ARGS, ...args], opts.timeoutMs ?? 30_000);
  const results = parseDigOutput(out);
  if (results.length === 0) throw new Error(`dig ${args.join(' ')}: could not parse output:\n${out}`);
  return results[0];
}

/** Same as dig() but returns every result dig printed. */
export async function digAll(args: string[], opts: { timeoutMs?: number } = {}): Promise<DigResult[]> {
  assertLoopbackServer(args);
  const out = await runDig([...DIG_DEFAULT_ARGS, ...args], opts.timeoutMs ?? 120_000);
  return parseDigOutput(out);
}

export interface DigManyOptions {
  /** Queries per dig process (default 200). */
  chunkSize?: number;
  /** dig processes running at once (default 2). */
  concurrency?: number;
}

/** dig command-line arguments for one batch (exported for debugging). */
export function digManyArgs(server: string, port: number, queries: DigQuery[], extraArgs: string[] = []): string[] {
  const args = [...DIG_DEFAULT_ARGS, `@${server}`, '-p', String(port), ...extraArgs];
  for (const q of queries) {
    // "-q NAME -t TYPE": a name can never be mistaken for a type/class/option.
    if (/^(AXFR|IXFR)/i.test(q.type)) throw new Error(`digMany: zone transfers are not supported, use dig() (${q.name} ${q.type})`);
    args.push('-q', q.name, '-t', q.type, q.tcp ? '+tcp' : '+notcp');
    if (q.args) args.push(...q.args);
  }
  return args;
}

function questionMatches(r: DigResult, q: DigQuery): boolean {
  if (!r.question) return true; // e.g. FORMERR reply with QDCOUNT=0: nothing to check
  return r.question.name === normaliseName(q.name) && r.question.type === q.type.toUpperCase();
}

/**
 * Run many queries against one server with few dig processes; results in query order.
 * extraArgs are global dig options (before the first query), e.g. ["+norec"] or ["+time=5"].
 */
export async function digMany(
  server: string,
  port: number,
  queries: DigQuery[],
  extraArgs: string[] = [],
  opts: DigManyOptions = {},
): Promise<DigResult[]> {
  if (!LOOPBACK_SERVERS.has(server)) {
    throw new Error(`digMany: refusing to query non-loopback server ${server}`);
  }
  const chunkSize = Math.max(1, opts.chunkSize ?? 200);
  const chunks: DigQuery[][] = [];
  for (let i = 0; i < queries.length; i += chunkSize) chunks.push(queries.slice(i, i + chunkSize));
  const results: DigResult[][] = new Array(chunks.length);
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const idx = next++;
      const chunk = chunks[idx];
      const args = digManyArgs(server, port, chunk, extraArgs);
      // Worst case every query times out: budget (time * tries + slack) per query.
      const out = await runDig(args, 10_000 + chunk.length * 5_000);
      const parsed = parseDigOutput(out);
      if (parsed.length !== chunk.length) {
        throw new Error(
          `digMany: expected ${chunk.length} results from dig, parsed ${parsed.length}\n` +
            `args: ${args.join(' ')}\n--- output ---\n${out}`,
        );
      }
      parsed.forEach((r, i) => {
        if (!questionMatches(r, chunk[i])) {
          throw new Error(
            `digMany: result ${i} is for ${r.question?.name} ${r.question?.type}, expected ${chunk[i].name} ${chunk[i].type}`,
          );
        }
      });
      results[idx] = parsed;
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 2, chunks.length) }, worker));
  return results.flat();
}

/**
 * For comparing answers on a shared, loaded machine: digMany with a 3 s timeout, then each query
 * that got no reply asked once more on its own (5 s). A loopback datagram can be lost when other
 * tests flood the host, or a reply delayed past dig's timeout by a starved CPU. A server that
 * really drops a query drops it twice and still shows up as NO_RESPONSE, and when more than one
 * query in 20 (and more than one) went unanswered they are reported as they came: not a hiccup.
 */
export async function digManyReasking(server: string, port: number, queries: DigQuery[], extraArgs: string[] = []): Promise<DigResult[]> {
  const results = await digMany(server, port, queries, ['+time=3', ...extraArgs]);
  const lost = results.flatMap((r, i) => (r.status === 'NO_RESPONSE' ? [i] : []));
  if (lost.length > Math.max(1, queries.length / 20)) return results;
  for (const i of lost) {
    const [again] = await digMany(server, port, [queries[i]], ['+time=5', ...extraArgs]);
    results[i] = again;
  }
  if (lost.length) console.log(`${server}#${port}: ${lost.length} of ${queries.length} queries got no reply and were asked again`);
  return results;
}

// ---------------------------------------------------------------------------------------------
// Differential comparison
// ---------------------------------------------------------------------------------------------

/** Types whose RDATA contains domain names (compared case-insensitively). */
const NAME_BEARING_TYPES = new Set([
  'NS', 'CNAME', 'DNAME', 'PTR', 'MX', 'SRV', 'SOA', 'NAPTR', 'SVCB', 'HTTPS', 'KX', 'AFSDB', 'RT', 'MINFO', 'RP',
  'NSEC', 'RRSIG',
]);

/** Canonical comparison key of an RR (owner lowercased, name-bearing RDATA lowercased). */
export function rrKey(rr: RR, opts: { ignoreTtl?: boolean } = {}): string {
  const data = NAME_BEARING_TYPES.has(rr.type) || rr.type === 'AAAA' ? rr.data.toLowerCase() : rr.data;
  const ttl = opts.ignoreTtl ? '' : `${rr.ttl} `;
  return `${rr.name.toLowerCase()} ${ttl}${rr.class} ${rr.type} ${data}`;
}

export type SectionName = 'answer' | 'authority' | 'additional';

export interface CompareOptions {
  ignoreTtl?: boolean;
  /** Sections to compare (default all three). */
  sections?: SectionName[];
  /** Header flags to compare (default ["aa", "tc"]). */
  flags?: string[];
  /** Labels for the two sides in messages (default ["a", "b"]). */
  labels?: [string, string];
}

function countKeys(rrs: RR[], ignoreTtl: boolean): Map<string, number> {
  const m = new Map<string, number>();
  for (const rr of rrs) {
    const k = rrKey(rr, { ignoreTtl });
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/**
 * Human-readable differences between two results: rcode, selected flags (AA, TC by default),
 * and each section as a multiset of normalised RRs (order ignored, names case-insensitive).
 * Empty array = equivalent.
 */
export function compareResults(a: DigResult, b: DigResult, opts: CompareOptions = {}): string[] {
  const [la, lb] = opts.labels ?? ['a', 'b'];
  const diffs: string[] = [];
  if (a.status !== b.status) diffs.push(`rcode: ${la}=${a.status} ${lb}=${b.status}`);
  if (a.status === 'NO_RESPONSE' || b.status === 'NO_RESPONSE') return diffs;
  for (const f of opts.flags ?? ['aa', 'tc']) {
    const fa = a.flags.has(f);
    const fb = b.flags.has(f);
    if (fa !== fb) diffs.push(`flag ${f.toUpperCase()}: ${la}=${fa ? 1 : 0} ${lb}=${fb ? 1 : 0}`);
  }
  for (const section of opts.sections ?? ['answer', 'authority', 'additional']) {
    const ca = countKeys(a[section], !!opts.ignoreTtl);
    const cb = countKeys(b[section], !!opts.ignoreTtl);
    for (const [k, n] of ca) {
      const m = cb.get(k) ?? 0;
      if (n > m) diffs.push(`${section}: only in ${la}${n - m > 1 ? ` (x${n - m})` : ''}: ${k}`);
    }
    for (const [k, n] of cb) {
      const m = ca.get(k) ?? 0;
      if (n > m) diffs.push(`${section}: only in ${lb}${n - m > 1 ? ` (x${n - m})` : ''}: ${k}`);
    }
  }
  return diffs;
}

/** One-line summary of a result, handy in assertion messages. */
export function summarise(r: DigResult): string {
  const q = r.question ? `${r.question.name} ${r.question.type}` : '?';
  const sec = (name: string, rrs: RR[]) => (rrs.length ? ` ${name}=[${rrs.map((x) => rrKey(x)).join(' | ')}]` : '');
  return `${q} -> ${r.status} flags=[${[...r.flags].join(' ')}]${sec('an', r.answer)}${sec('ns', r.authority)}${sec('ar', r.additional)}${r.error ? ` error=${r.error}` : ''}`;
}
