// Adding/removing a member cluster in fedns's own configuration file.
//
// The edit is made with the `yaml` Document API (which decides what the document must contain,
// comments kept), but written back by splicing only the affected `clusters[]` item into the
// original text, so that every other line stays byte for byte as it was (a full re-stringify
// would, for instance, re-pad every flow collection). The spliced text is re-parsed and must
// equal the Document API's result, otherwise the Document API's own output is used. Either
// way the result is validated with buildConfig before anything is written, and it is written
// atomically (temp file in the same directory + rename).
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Document, YAMLMap, YAMLSeq, isMap, isScalar, isSeq, parseDocument, type Node, type Pair } from 'yaml';
import { ConfigError, MAX_CONFIG_FILE, buildConfig, documentValue, type Config } from '../config/load.js';
import { readRegularFile, UnreadableFile } from '../regular-file.js';
import { configSchema } from '../config/schema.js';

/** What `fedns join` puts in clusters[]. */
export interface JoinEntry {
  name: string;
  /** Left as it is in an existing entry when undefined. */
  region?: string;
  /** Left as it is in an existing entry when undefined. */
  zones?: string[];
  /** As it should appear in the file (see kubeconfigRef). */
  kubeconfig: string;
  context?: string;
}

export type ConfigAction = 'added' | 'updated' | 'unchanged' | 'removed' | 'absent';

export interface ConfigEdit {
  before: string;
  after: string;
  action: ConfigAction;
}

/** The raw `clusters[]` entry as written in the file. */
export interface RawCluster {
  name: string;
  region?: string;
  zones?: string[];
  source?: { type?: string; kubeconfig?: string; context?: string; inCluster?: boolean; path?: string };
  [key: string]: unknown;
}

export function readConfigText(file: string): string {
  try {
    // As serve reads it: a regular file, of a bounded size (a FIFO would wait for ever, /dev/zero never end).
    return readRegularFile(file, MAX_CONFIG_FILE, 'configuration file');
  } catch (e) {
    const why = e instanceof UnreadableFile ? (e.code ?? e.detail) : (e as Error).message;
    throw new ConfigError(file, [`cannot read the file (${why}); give the configuration with --config FILE`]);
  }
}

function parse(text: string, file: string): Document.Parsed {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new ConfigError(file, doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0].replace(/:$/, '')}`));
  // Aliases that expand without bound are refused here, as a problem of the file, before an edit reads its values.
  documentValue(doc, file);
  return doc;
}

/** The federation's domain and name, from a file that at least passes the schema. */
export function federationOf(text: string, file: string): { domain: string; federation: string; mcsDomain?: string } {
  const raw = parse(text, file).toJS() as unknown;
  const r = configSchema.safeParse(raw ?? {});
  if (!r.success) buildConfig(raw, file, dirname(file)); // throws ConfigError naming the fields
  const c = r.data!;
  return { domain: c.domain, federation: c.federation, mcsDomain: c.mcs.enabled ? c.mcs.domain : undefined };
}

/** Validates a configuration text as `fedns serve` would load it (paths relative to `file`). */
export function validateConfigText(text: string, file: string): Config {
  return buildConfig(parse(text, file).toJS(), file, dirname(file));
}

/**
 * How the kubeconfig path is written into the configuration (where paths are relative to the
 * configuration file): relative when the kubeconfig is in the configuration's directory tree,
 * absolute otherwise.
 */
export function kubeconfigRef(configFile: string, kubeconfig: string, cwd = process.cwd()): string {
  const abs = resolve(cwd, kubeconfig);
  const rel = relative(dirname(resolve(cwd, configFile)), abs);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

export function findCluster(text: string, file: string, name: string): RawCluster | undefined {
  const clusters = (parse(text, file).toJS() as { clusters?: unknown } | null)?.clusters;
  if (!Array.isArray(clusters)) return undefined;
  return clusters.find((c): c is RawCluster => !!c && typeof c === 'object' && (c as RawCluster).name === name);
}

// ---------------------------------------------------------------------------------------------
// Text splicing

interface ItemBounds {
  /** Start of the item's "- " line. */
  start: number;
  /** After the item's last line (including its line ending). */
  end: number;
  /** Indentation before the "-". */
  indent: string;
}

function lineStart(text: string, pos: number): number {
  return text.lastIndexOf('\n', pos - 1) + 1;
}

function itemBounds(text: string, item: unknown): ItemBounds | undefined {
  const range = (item as Node | undefined)?.range;
  if (!range) return undefined;
  const start = lineStart(text, range[0]);
  const m = /^([ \t]*)-[ \t]+$/.exec(text.slice(start, range[0]));
  if (!m) return undefined;
  let end = range[1];
  if (end > 0 && text[end - 1] !== '\n') {
    const nl = text.indexOf('\n', end);
    end = nl < 0 ? text.length : nl + 1;
  }
  return { start, end, indent: m[1] };
}

/**
 * One block-sequence item ("- name: ...") rendered with `indent` before its "-". A comment or
 * blank line before the item is not part of it here: it stays in the text where it is.
 */
function renderItem(node: unknown, indent: string, eol: string): string {
  const n = node as { commentBefore?: string | null; spaceBefore?: boolean };
  const saved = { commentBefore: n.commentBefore, spaceBefore: n.spaceBefore };
  n.commentBefore = undefined;
  n.spaceBefore = undefined;
  const seq = new YAMLSeq();
  seq.items.push(node);
  let text: string;
  try {
    text = new Document(seq).toString({ lineWidth: 0 });
  } finally {
    Object.assign(n, saved);
  }
  return text
    .split('\n')
    .slice(0, -1)
    .map((l) => (l ? indent + l : l) + eol)
    .join('');
}

function clustersPair(doc: Document): Pair | undefined {
  if (!isMap(doc.contents)) return undefined;
  return doc.contents.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === 'clusters');
}

/** The configuration's text after the edit: the splice when it is right, else the full re-stringify. */
function finish(doc: Document, splice: () => string | undefined): string {
  const expected = doc.toJS() as unknown;
  let spliced: string | undefined;
  try {
    spliced = splice();
  } catch {
    spliced = undefined;
  }
  if (spliced !== undefined) {
    const check = parseDocument(spliced);
    if (check.errors.length === 0 && isDeepStrictEqual(check.toJS(), expected)) return spliced;
  }
  return doc.toString({ lineWidth: 0 });
}

/** A value as it reads after "key: " (flow collections and plain scalars only). */
function inline(node: Node): string | undefined {
  const t = new Document(node).toString({ lineWidth: 0 }).replace(/\r?\n$/, '');
  return t.includes('\n') ? undefined : t;
}

/**
 * Applies changed keys to an existing item's text: a changed value is replaced where it is, a
 * new key is added as a line at the end of the item, a deleted key's lines are removed; the
 * item's other lines stay as they are. Undefined when the layout is not one this handles.
 */
function spliceItemUpdate(
  text: string,
  item: YAMLMap,
  original: Map<string, { key: [number, number]; value?: [number, number] }>,
  changed: Array<{ key: string; node?: Node }>,
  eol: string,
): string | undefined {
  const b = itemBounds(text, item);
  const first = (item as Node).range;
  if (!b || !first) return undefined;
  const keyIndent = ' '.repeat(first[0] - lineStart(text, first[0]));
  const edits: Array<{ from: number; to: number; text: string }> = [];
  const appended: string[] = [];
  for (const c of changed) {
    const at = original.get(c.key);
    if (!c.node) {
      if (!at?.value) return undefined;
      const from = lineStart(text, at.key[0]);
      const nl = text.indexOf('\n', Math.max(at.value[1] - 1, at.key[1]));
      edits.push({ from, to: nl < 0 ? text.length : nl + 1, text: '' });
      continue;
    }
    const value = inline(c.node);
    if (value === undefined) return undefined;
    if (!at) {
      appended.push(`${keyIndent}${c.key}: ${value}${eol}`);
      continue;
    }
    if (!at.value) return undefined;
    const colon = text.indexOf(':', at.key[1]);
    if (colon < 0 || colon > at.value[0]) return undefined;
    let to = at.value[1];
    while (to > colon && (text[to - 1] === '\n' || text[to - 1] === '\r')) to--;
    edits.push({ from: colon + 1, to, text: ` ${value}` });
  }
  if (appended.length) {
    const glue = b.end === text.length && !text.endsWith('\n') ? eol : '';
    edits.push({ from: b.end, to: b.end, text: glue + appended.join('') });
  }
  let out = text;
  for (const e of edits.sort((x, y) => y.from - x.from)) out = out.slice(0, e.from) + e.text + out.slice(e.to);
  return out;
}

function flowNode(doc: Document, value: unknown): Node {
  const n = doc.createNode(value) as Node & { flow?: boolean };
  n.flow = true;
  return n;
}

function desiredSource(e: JoinEntry): Record<string, string> {
  return { type: 'kube', kubeconfig: e.kubeconfig, ...(e.context ? { context: e.context } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Edits

/** Adds `entry` to clusters[] (or brings an existing entry of that name in line with it). Pure. */
export function addCluster(text: string, file: string, entry: JoinEntry): ConfigEdit {
  const doc = parse(text, file);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) doc.contents = new YAMLMap() as never;
  if (!isMap(doc.contents)) throw new ConfigError(file, ['(top level): expected a mapping of settings']);
  const seq = doc.get('clusters', true) as unknown;
  if (seq !== undefined && !isSeq(seq) && !(isScalar(seq) && seq.value === null))
    throw new ConfigError(file, ['clusters: expected a list of clusters']);
  const items = isSeq(seq) ? seq.items : [];
  const index = items.findIndex((it) => isMap(it) && it.get('name') === entry.name);

  if (index >= 0) {
    const item = items[index] as YAMLMap;
    const current = item.toJSON() as RawCluster;
    // Where each key's text is, before the Document API edit replaces value nodes.
    const original = new Map<string, { key: [number, number]; value?: [number, number] }>();
    for (const p of item.items) {
      const k = p.key as Node | undefined;
      const v = p.value as Node | undefined;
      if (isScalar(k) && k.range) original.set(String(k.value), { key: [k.range[0], k.range[1]], value: v?.range ? [v.range[0], v.range[1]] : undefined });
    }
    const changed: Array<{ key: string; node?: Node }> = [];
    const set = (k: string, node: Node) => {
      item.set(k, node);
      changed.push({ key: k, node });
    };
    if (entry.region !== undefined && current.region !== entry.region) set('region', doc.createNode(entry.region) as Node);
    if (entry.zones !== undefined && !isDeepStrictEqual(current.zones ?? [], entry.zones)) {
      if (entry.zones.length > 0) set('zones', flowNode(doc, entry.zones));
      else if (item.has('zones')) {
        item.delete('zones');
        changed.push({ key: 'zones' });
      }
    }
    if (!isDeepStrictEqual(current.source, desiredSource(entry))) set('source', flowNode(doc, desiredSource(entry)));
    if (changed.length === 0) return { before: text, after: text, action: 'unchanged' };
    const after = finish(doc, () => {
      const fine = spliceItemUpdate(text, item, original, changed, eol);
      if (fine !== undefined) return fine;
      const b = itemBounds(text, item);
      return b ? text.slice(0, b.start) + renderItem(item, b.indent, eol) + text.slice(b.end) : undefined;
    });
    return { before: text, after, action: 'updated' };
  }

  const node = doc.createNode({
    name: entry.name,
    ...(entry.region !== undefined ? { region: entry.region } : {}),
  }) as YAMLMap;
  if (entry.zones && entry.zones.length > 0) node.set('zones', flowNode(doc, entry.zones));
  node.set('source', flowNode(doc, desiredSource(entry)));

  const wasEmptyFlow = isSeq(seq) && seq.flow === true && seq.items.length === 0;
  if (isSeq(seq)) {
    seq.items.push(node);
    if (wasEmptyFlow) seq.flow = false;
  } else {
    const s = new YAMLSeq();
    s.items.push(node);
    doc.set('clusters', s);
  }
  const after = finish(doc, () => {
    if (isSeq(seq) && !wasEmptyFlow) {
      if (seq.flow) return undefined;
      const last = itemBounds(text, seq.items[seq.items.length - 2]);
      if (!last) return undefined;
      const glue = last.end === text.length && !text.endsWith('\n') ? eol : '';
      return text.slice(0, last.end) + glue + renderItem(node, last.indent, eol) + text.slice(last.end);
    }
    const pair = clustersPair(doc);
    const key = pair?.key as Node | undefined;
    if (isSeq(seq) && wasEmptyFlow && key?.range && seq.range) {
      // clusters: []  ->  clusters:\n  - name: ...
      const indent = text.slice(lineStart(text, key.range[0]), key.range[0]);
      if (!/^[ \t]*$/.test(indent)) return undefined;
      const colon = text.lastIndexOf(':', seq.range[0]);
      const rendered = renderItem(node, `${indent}  `, eol);
      return text.slice(0, colon + 1) + eol + rendered.slice(0, -eol.length) + text.slice(seq.range[1]);
    }
    if (seq === undefined && isMap(doc.contents) && !(doc.contents as YAMLMap).flow) {
      const glue = text === '' || text.endsWith('\n') ? '' : eol;
      return text + glue + `clusters:${eol}` + renderItem(node, '  ', eol);
    }
    return undefined;
  });
  return { before: text, after, action: 'added' };
}

/** Removes the cluster named `name` from clusters[] (nothing else). Pure. */
export function removeCluster(text: string, file: string, name: string): ConfigEdit {
  const doc = parse(text, file);
  const seq = doc.get('clusters', true) as unknown;
  if (!isSeq(seq)) return { before: text, after: text, action: 'absent' };
  const index = seq.items.findIndex((it) => isMap(it) && it.get('name') === name);
  if (index < 0) return { before: text, after: text, action: 'absent' };
  const item = seq.items[index];
  seq.items.splice(index, 1);
  if (seq.items.length === 0) seq.flow = true; // "clusters: []" (null would not validate)
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const after = finish(doc, () => {
    const b = itemBounds(text, item);
    if (!b) return undefined;
    if (seq.items.length > 0) return text.slice(0, b.start) + text.slice(b.end);
    const colon = text.lastIndexOf(':', (seq.range ?? [b.start])[0]);
    if (colon < 0) return undefined;
    const rest = text.slice(colon + 1, b.start);
    // Comments between "clusters:" and the item stay where they were.
    const head = /^[ \t]*(\r?\n)/.test(rest) ? ` []${rest}` : undefined;
    if (head === undefined) return undefined;
    const tail = text.slice(b.end);
    const out = text.slice(0, colon + 1) + head + tail;
    return out.endsWith('\n') || tail !== '' ? out : out + eol;
  });
  return { before: text, after, action: 'removed' };
}
