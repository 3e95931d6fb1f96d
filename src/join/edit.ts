// Pure text edits of a member cluster's DNS configuration (string in, string out), used by
// `fedns join` / `fedns unjoin`:
//
//  - kube-dns, ConfigMap kube-system/kube-dns:
//      data.stubDomains  JSON object {"<domain>": ["ip[:port]", ...], ...}
//      data.federations  comma-separated "name=domain" list
//  - CoreDNS, ConfigMap kube-system/coredns:
//      data.Corefile     a server block for the federation domain between marker comments
//
// Every edit touches only our own entry and leaves the rest of the text byte for byte as it was
// (no re-serialising of the JSON, no reformatting of the Corefile), so that `unjoin` after
// `join` gives back the original text exactly, and a second `join` is a no-op (the very same
// string comes back).

/** A value in the member's DNS configuration that we cannot edit safely; the message says why. */
export class EditError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EditError';
  }
}

/** "Example.COM." -> "example.com" (DNS configs name domains without the trailing dot). */
export function bareDomain(domain: string): string {
  const d = domain.trim().toLowerCase();
  return d.length > 1 && d.endsWith('.') ? d.slice(0, -1) : d;
}

// ---------------------------------------------------------------------------------------------
// kube-dns stubDomains

interface JsonMember {
  key: string;
  /** Offset of the key's opening quote. */
  start: number;
  /** Offset of the value's first character. */
  valueStart: number;
  /** Offset just after the value. */
  end: number;
}

interface JsonObjectScan {
  /** Offset of "{". */
  open: number;
  members: JsonMember[];
}

/** Offsets of the top-level members of a JSON object text (already validated by JSON.parse). */
function scanObject(text: string): JsonObjectScan {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const str = () => {
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++; // closing quote
  };
  const value = () => {
    const c = text[i];
    if (c === '"') return str();
    if (c === '{' || c === '[') {
      let depth = 0;
      do {
        const d = text[i];
        if (d === '"') {
          str();
          continue;
        }
        if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') depth--;
        i++;
      } while (depth > 0 && i < text.length);
      return;
    }
    while (i < text.length && !/[\s,}\]]/.test(text[i])) i++;
  };
  ws();
  const open = i;
  i++;
  const members: JsonMember[] = [];
  for (;;) {
    ws();
    if (i >= text.length || text[i] === '}') break;
    if (text[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    str();
    const key = JSON.parse(text.slice(start, i)) as string;
    ws();
    i++; // ':'
    ws();
    const valueStart = i;
    value();
    members.push({ key, start, valueStart, end: i });
  }
  return { open, members };
}

/** Parses and checks a stubDomains value: a JSON object of string arrays. */
export function parseStubDomains(json: string): Record<string, string[]> {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new EditError(`stubDomains is not valid JSON (${(e as Error).message}); expected an object like {"acme.local": ["10.0.0.10"]}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v))
    throw new EditError(`stubDomains must be a JSON object like {"acme.local": ["10.0.0.10"]}, not ${Array.isArray(v) ? 'an array' : JSON.stringify(v)}`);
  for (const [k, list] of Object.entries(v as Record<string, unknown>)) {
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string'))
      throw new EditError(`stubDomains["${k}"] must be a list of name server addresses like ["10.0.0.10"], not ${JSON.stringify(list)}`);
  }
  return v as Record<string, string[]>;
}

function serversJson(servers: readonly string[]): string {
  return `[${servers.map((s) => JSON.stringify(s)).join(', ')}]`;
}

function checkServers(servers: readonly string[]): void {
  if (servers.length === 0) throw new EditError('no name server given');
}

/**
 * Sets `domain`'s entry in a stubDomains JSON object to `servers`, keeping every other entry
 * and the formatting. Absent/empty input gives a new object. Unchanged input is returned as is.
 */
export function mergeStubDomains(json: string | undefined, domain: string, servers: readonly string[]): string {
  checkServers(servers);
  const d = bareDomain(domain);
  const entry = `${JSON.stringify(d)}: ${serversJson(servers)}`;
  if (json === undefined || json.trim() === '') return `{${entry}}`;
  parseStubDomains(json);
  const scan = scanObject(json);
  const ours = scan.members.filter((m) => bareDomain(m.key) === d);
  if (ours.length > 0) {
    let out = json;
    for (const m of [...ours].reverse()) {
      const current = JSON.parse(json.slice(m.valueStart, m.end)) as string[];
      if (current.length === servers.length && current.every((s, i) => s === servers[i])) continue;
      out = out.slice(0, m.valueStart) + serversJson(servers) + out.slice(m.end);
    }
    return out;
  }
  if (scan.members.length === 0) return json.slice(0, scan.open + 1) + entry + json.slice(scan.open + 1);
  // Append after the last member, separated the way the last member is from what precedes it.
  const last = scan.members[scan.members.length - 1];
  let k = last.start;
  while (k > 0 && /\s/.test(json[k - 1])) k--;
  const sep = json.slice(k, last.start) || ' ';
  return json.slice(0, last.end) + ',' + sep + entry + json.slice(last.end);
}

/**
 * Removes `domain`'s entry from a stubDomains JSON object, keeping everything else as it was
 * (an object left empty stays "{}"; whether to drop the key is the caller's call).
 */
export function removeStubDomain(json: string | undefined, domain: string): string | undefined {
  if (json === undefined || json.trim() === '') return json;
  parseStubDomains(json);
  const d = bareDomain(domain);
  let out = json;
  for (;;) {
    const { members } = scanObject(out);
    const i = members.findIndex((m) => bareDomain(m.key) === d);
    if (i < 0) return out;
    const m = members[i];
    if (i > 0) out = out.slice(0, members[i - 1].end) + out.slice(m.end);
    else if (members.length > 1) out = out.slice(0, m.start) + out.slice(members[1].start);
    else out = out.slice(0, m.start) + out.slice(m.end);
  }
}

/** True for a stubDomains value with no entries ("{}", whitespace). */
export function stubDomainsEmpty(json: string | undefined): boolean {
  if (json === undefined || json.trim() === '') return true;
  try {
    return Object.keys(parseStubDomains(json)).length === 0;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// kube-dns federations ("name=domain,name2=domain2")

interface Segment {
  text: string;
  name: string;
  domain: string;
}

function segments(list: string): Segment[] {
  return list.split(',').map((text) => {
    const t = text.trim();
    const eq = t.indexOf('=');
    if (eq <= 0 || eq === t.length - 1)
      throw new EditError(`federations: ${JSON.stringify(t)} is not NAME=DOMAIN (the value must be a comma-separated list like "fed=example.com,other=example.org")`);
    return { text, name: t.slice(0, eq).trim(), domain: bareDomain(t.slice(eq + 1)) };
  });
}

/** Adds `name=domain` to a federations list (replacing a `name=` entry with another domain). */
export function addFederation(list: string | undefined, name: string, domain: string): string {
  const d = bareDomain(domain);
  const entry = `${name}=${d}`;
  if (list === undefined) return entry;
  if (list.trim() === '') return entry + list;
  const segs = segments(list);
  if (segs.some((s) => s.name === name)) {
    if (segs.every((s) => s.name !== name || s.domain === d)) return list;
    return segs
      .map((s) => {
        if (s.name !== name || s.domain === d) return s.text;
        const lead = /^\s*/.exec(s.text)![0];
        const trail = /\s*$/.exec(s.text)![0];
        return lead + entry + trail;
      })
      .join(',');
  }
  const end = list.trimEnd().length;
  return list.slice(0, end) + ',' + entry + list.slice(end);
}

/** Removes `name=domain` from a federations list (an entry for `name` with another domain is not ours). */
export function removeFederation(list: string | undefined, name: string, domain: string): string | undefined {
  if (list === undefined || list.trim() === '') return list;
  const d = bareDomain(domain);
  let segs = segments(list).map((s) => s.text);
  for (;;) {
    const parsed = segs.map((t) => segments(t)[0]);
    const i = parsed.findIndex((s) => s.name === name && s.domain === d);
    if (i < 0) return segs.join(',');
    const lead = /^\s*/.exec(segs[i])![0];
    const trail = /\s*$/.exec(segs[i])![0];
    if (segs.length === 1) return lead + trail;
    if (i === segs.length - 1) {
      segs = segs.slice(0, i);
      segs[i - 1] += trail;
    } else {
      if (i === 0) segs[1] = lead + segs[1].trimStart();
      segs = [...segs.slice(0, i), ...segs.slice(i + 1)];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// CoreDNS Corefile

export const beginMarker = (fed: string): string => `# fedns:begin ${fed}`;
export const endMarker = (fed: string): string => `# fedns:end ${fed}`;

interface Line {
  /** Text without the line ending. */
  text: string;
  start: number;
  /** Offset after the line ending (== start of the next line). */
  next: number;
  /** Offset of the line ending (== next when there is none). */
  eol: number;
}

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const next = nl < 0 ? text.length : nl + 1;
    let eol = nl < 0 ? text.length : nl;
    if (eol > start && text[eol - 1] === '\r') eol--;
    lines.push({ text: text.slice(start, eol), start, next, eol });
    start = next;
  }
  return lines;
}

function lineEnding(text: string): string {
  return text.includes('\r\n') ? '\r\n' : '\n';
}

interface MarkedBlock {
  begin: number; // line index
  end: number; // line index
}

function findBlock(lines: Line[], fed: string): MarkedBlock | undefined {
  const b = lines.findIndex((l) => l.text.trim() === beginMarker(fed));
  const e = lines.findIndex((l) => l.text.trim() === endMarker(fed));
  if (b < 0 && e < 0) return undefined;
  if (b < 0 || e < b)
    throw new EditError(
      `Corefile has "${b < 0 ? endMarker(fed) : beginMarker(fed)}" without a matching "${b < 0 ? beginMarker(fed) : endMarker(fed)}" after it; fix the Corefile by hand (remove the fedns lines), then run the command again`,
    );
  return { begin: b, end: e };
}

interface ServerKey {
  zone: string;
  port: number;
  line: number;
}

/** The top-level server-block keys ("zone:port") of a Corefile, outside our own block. */
function serverKeys(lines: Line[], skip?: MarkedBlock): ServerKey[] {
  const keys: ServerKey[] = [];
  let depth = 0;
  lines.forEach((l, n) => {
    if (skip && n >= skip.begin && n <= skip.end) return;
    const code = l.text.replace(/#.*/, '');
    const brace = code.indexOf('{');
    if (depth === 0 && brace >= 0) {
      for (const raw of code.slice(0, brace).split(/[\s,]+/).filter(Boolean)) {
        const m = /^(?:[a-z]+:\/\/)?(.+?)(?::(\d+))?$/i.exec(raw);
        if (!m) continue;
        const zone = m[1] === '.' ? '.' : bareDomain(m[1]);
        keys.push({ zone, port: m[2] ? Number(m[2]) : 53, line: n + 1 });
      }
    }
    for (const ch of code) {
      if (ch === '{') depth++;
      else if (ch === '}') depth = Math.max(0, depth - 1);
    }
  });
  return keys;
}

/** Our server block (without a final line ending). */
export function corefileBlock(fed: string, domain: string, servers: string | readonly string[], port = 53, eol = '\n'): string {
  const list = typeof servers === 'string' ? [servers] : [...servers];
  checkServers(list);
  return [
    beginMarker(fed),
    `${bareDomain(domain)}:${port} {`,
    '    errors',
    '    cache 30',
    `    forward . ${list.join(' ')}`,
    '}',
    endMarker(fed),
  ].join(eol);
}

/**
 * Adds (or replaces in place) the marked server block that forwards `domain` to `servers`.
 * The block listens on the port of the Corefile's root (".") server block, so CoreDNS serves it
 * on the same socket. Fails when another, unmarked block already serves the domain on that port
 * (CoreDNS would refuse to load a duplicate zone).
 */
export function upsertCorefileBlock(corefile: string, fed: string, domain: string, servers: string | readonly string[]): string {
  const lines = splitLines(corefile);
  const eol = lineEnding(corefile);
  const mine = findBlock(lines, fed);
  const keys = serverKeys(lines, mine);
  const port = keys.find((k) => k.zone === '.')?.port ?? 53;
  const d = bareDomain(domain);
  const clash = keys.find((k) => k.zone === d && k.port === port);
  if (clash)
    throw new EditError(
      `Corefile line ${clash.line} already has a server block for ${d}:${port} that fedns did not write; CoreDNS cannot load two blocks for one zone. Remove that block (or add "forward . <fedns address>" to it by hand and do not use join)`,
    );
  const block = corefileBlock(fed, domain, servers, port, eol);
  if (mine) {
    const from = lines[mine.begin].start;
    const to = lines[mine.end].eol;
    return corefile.slice(0, from) + block + corefile.slice(to);
  }
  if (corefile === '') return block + eol;
  return corefile + (corefile.endsWith('\n') ? '' : eol) + block + (corefile.endsWith('\n') ? eol : '');
}

/** Removes the marked block (and only it); the exact inverse of upsertCorefileBlock appending it. */
export function removeCorefileBlock(corefile: string, fed: string): string {
  const lines = splitLines(corefile);
  const mine = findBlock(lines, fed);
  if (!mine) return corefile;
  let from = lines[mine.begin].start;
  const last = lines[mine.end];
  const to = last.next;
  if (last.eol === last.next && mine.begin > 0) {
    // The block ended the text without a line ending: it was appended after one we added.
    from = lines[mine.begin - 1].eol;
  }
  return corefile.slice(0, from) + corefile.slice(to);
}

/** True when the Corefile has our block for `fed`. */
export function hasCorefileBlock(corefile: string, fed: string): boolean {
  return findBlock(splitLines(corefile), fed) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// What kube-dns's dnsmasq-nanny makes of the ConfigMap

/** "1.2.3.4:5353" -> "1.2.3.4#5353", "[::1]:5353" -> "[::1]#5353" (dnsmasq's port separator). */
function munge(server: string): string {
  const colon = server.lastIndexOf(':');
  if (colon < 0) return server;
  const bracket = server.indexOf(']');
  const v4 = server.split(':').length - 1 === 1;
  if (v4 || (bracket >= 0 && colon > bracket)) return server.slice(0, colon) + '#' + server.slice(colon + 1);
  return server;
}

/**
 * The dnsmasq arguments kube-dns's dnsmasq-nanny derives from the kube-dns ConfigMap's data
 * (k8s.io/dns pkg/dnsmasq/nanny.go: one `--server=/DOMAIN/ADDR[#PORT]` per stub domain server,
 * then `--server=ADDR` per upstream name server and `--no-resolv` if there are any).
 * Name (not IP) servers, which the nanny resolves first, are passed through unresolved.
 */
export function kubeDnsDnsmasqArgs(data: Record<string, string | undefined>): string[] {
  const args: string[] = [];
  if (data.stubDomains !== undefined && data.stubDomains.trim() !== '') {
    for (const [domain, servers] of Object.entries(parseStubDomains(data.stubDomains))) {
      for (const s of servers) args.push(`--server=/${domain}/${munge(s)}`);
    }
  }
  if (data.upstreamNameservers !== undefined && data.upstreamNameservers.trim() !== '') {
    let ups: unknown;
    try {
      ups = JSON.parse(data.upstreamNameservers);
    } catch (e) {
      throw new EditError(`upstreamNameservers is not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(ups) || ups.some((s) => typeof s !== 'string')) throw new EditError('upstreamNameservers must be a JSON list of strings');
    for (const s of ups as string[]) args.push(`--server=${munge(s)}`);
    if (ups.length > 0) args.push('--no-resolv');
  }
  return args;
}
