// Loading the configuration: YAML in, a validated Config out, or errors that name the file,
// the field and what is wrong. Nothing starts on a half-valid file.
import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { readRegularFile, UnreadableFile } from '../regular-file.js';
import { dirname, resolve } from 'node:path';
import { parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type ParsedConfig } from './schema.js';

export interface Config extends ParsedConfig {
  /** The file this configuration came from (absolute), or "<inline>". */
  file: string;
  soa: ParsedConfig['soa'] & { mname: string; rname: string };
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(problems.map((p) => `${file}: ${p}`).join('\n'));
    this.name = 'ConfigError';
  }
}

function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(top level)';
}

/** What a YAML value of each type is written like, for "expected ..." messages. */
const WRITTEN_AS: Record<string, string> = {
  array: 'a list, e.g. [a, b] or one "- item" per line',
  boolean: 'true or false',
  number: 'a number',
  int: 'a whole number',
  string: 'a string',
  object: 'a mapping of fields, e.g. { name: value }',
};

/** Values shown in messages at most this long; longer ones, and any under a secret-bearing field, are only named by type. */
const SHOWN_VALUE = 24;

/**
 * The type of a YAML value as the messages name it, with the value when it is short and not
 * where a secret may have been pasted (transfer.tsig): the message reaches the log and check's
 * output.
 */
function typeOf(v: unknown, path: readonly PropertyKey[]): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const secret = path.includes('tsig');
  if (typeof v === 'string') return !secret && v.length <= SHOWN_VALUE ? `the string ${JSON.stringify(v)}` : 'a string';
  if (typeof v === 'number' || typeof v === 'boolean') return !secret && String(v).length <= SHOWN_VALUE ? `${typeof v} ${String(v)}` : `a ${typeof v}`;
  return typeof v;
}

/**
 * One problem in words an operator can act on. Messages the schema writes itself stay; zod's
 * generic ones ("Invalid input: expected boolean, received string") say what to write instead.
 */
function issueText(issue: z.core.$ZodIssue): string {
  let msg = issue.message;
  if (issue.code === 'unrecognized_keys') msg = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling)`;
  else if (issue.code === 'invalid_type' && msg.startsWith('Invalid input:')) {
    // YAML's .inf and .nan are numbers too, but no setting takes them.
    const expected = issue.expected === 'number' && typeof issue.input === 'number' ? 'a finite number' : (WRITTEN_AS[issue.expected] ?? issue.expected);
    msg = issue.input === undefined ? `missing: give ${expected}` : `expected ${expected}, got ${typeOf(issue.input, issue.path)}`;
  } else if (issue.code === 'too_small' && msg.startsWith('Too small:') && issue.origin === 'number') {
    msg = issue.inclusive === false ? `must be more than ${String(issue.minimum)}` : `must be at least ${String(issue.minimum)}`;
  } else if (issue.code === 'too_small' && msg.startsWith('Too small:') && issue.origin === 'array') {
    msg = `give at least ${String(issue.minimum)} item${Number(issue.minimum) === 1 ? '' : 's'}`;
  } else if (issue.code === 'too_big' && msg.startsWith('Too big:') && issue.origin === 'number') {
    msg = `must be at most ${String(issue.maximum)}`;
  } else if (issue.code === 'invalid_value' && msg.startsWith('Invalid option:')) {
    msg = `expected one of ${issue.values.map((v) => String(v)).join(', ')}`;
  }
  return `${fieldPath(issue.path)}: ${msg}`;
}

/** Validates an already-parsed document; paths in it resolve against `baseDir`. */
export function buildConfig(raw: unknown, file: string, baseDir: string): Config {
  const result = configSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!result.success) throw new ConfigError(file, result.error.issues.map(issueText));
  const c = result.data;
  const problems: string[] = [];
  c.clusters.forEach((cl, i) => {
    const src = cl.source;
    if (src.type === 'files') {
      src.path = resolve(baseDir, src.path);
      if (!isDir(src.path)) problems.push(`clusters[${i}].source.path: directory ${src.path} not found`);
    } else if (src.kubeconfig) {
      src.kubeconfig = resolve(baseDir, src.kubeconfig);
      if (!isFile(src.kubeconfig)) problems.push(`clusters[${i}].source.kubeconfig: file ${src.kubeconfig} not found`);
    }
  });
  if (c.transfer.serialFile) {
    c.transfer.serialFile = resolve(baseDir, c.transfer.serialFile);
    // With mcs, the clusterset zone's serial is kept beside it, in serialFile + ".mcs".
    for (const path of c.mcs.enabled ? [c.transfer.serialFile, `${c.transfer.serialFile}.mcs`] : [c.transfer.serialFile]) {
      const why = serialFileProblem(path);
      if (why) problems.push(`transfer.serialFile: ${why}`);
    }
  }
  if (problems.length) throw new ConfigError(file, problems);
  if (c.nameservers.length === 0) {
    const host = c.listen[0].host;
    c.nameservers.push({ name: `ns1.${c.domain}`, addresses: host === '0.0.0.0' || host === '::' ? [] : [host] });
    if (c.nameservers[0].addresses.length === 0)
      throw new ConfigError(file, ['nameservers: none given and the listen address has no usable glue; list the name servers with their addresses']);
  }
  const soa = {
    ...c.soa,
    mname: c.soa.mname ?? c.nameservers[0].name,
    rname: c.soa.rname ?? `hostmaster.${c.domain}`,
  };
  return { ...c, soa, file };
}

/**
 * Why the serial cannot be kept at `path`, or undefined: it is written beside itself and renamed
 * into place, so its directory must be one fedns can write, and the path no directory. Without
 * it, a restart could go back to a serial secondaries already hold.
 */
function serialFileProblem(path: string): string | undefined {
  const dir = dirname(path);
  if (!isDir(dir)) return `${exists(dir) ? `${dir} is not a directory` : `directory ${dir} not found`}; create it, or name a file in a directory that exists`;
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    return `directory ${dir} cannot be written by fedns; the serial is written there (make it writable, or choose another)`;
  }
  if (isDir(path)) return `${path} is a directory; name a file`;
  // It is replaced by a regular file on every save: a FIFO or a device there (/dev/null) would be.
  if (exists(path) && !isFile(path)) return `${path} is not a regular file (it would be replaced by one); name a file`;
  return undefined;
}

/** What is at `p` (symlinks followed), or undefined when nothing is. */
function stat(p: string): Stats | undefined {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}

function exists(p: string): boolean {
  return stat(p) !== undefined;
}

function isDir(p: string): boolean {
  return stat(p)?.isDirectory() ?? false;
}

function isFile(p: string): boolean {
  return stat(p)?.isFile() ?? false;
}

/** Largest configuration file read (one with every cluster written out is a few KiB). */
export const MAX_CONFIG_FILE = 16 * 1024 * 1024;

/**
 * Reads and validates the YAML configuration file `path`; throws ConfigError. `reload`: it
 * replaces a running one, and a file with nothing in it (empty, or only comments: one caught
 * while it is rewritten in place) is refused rather than read as the defaults, which have no
 * clusters and would drop every one.
 */
export function loadConfig(path: string, { reload = false } = {}): Config {
  const file = resolve(path);
  let text: string;
  try {
    // Only a regular file: a FIFO would hold a reload, and every query with it, until written to.
    text = readRegularFile(file, MAX_CONFIG_FILE, 'configuration file');
  } catch (e) {
    if (!(e instanceof UnreadableFile)) throw e;
    const code = e.code;
    const why = code === 'ENOENT' ? 'no such file (give its path with --config)' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'a directory, not a file' : code ? code : e.detail;
    throw new ConfigError(file, [`cannot read the file: ${why}`]);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new ConfigError(file, doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0].replace(/:$/, '')}`));
  if (reload && doc.contents === null) {
    const what = text.trim() === '' ? 'the file is empty' : 'the file holds only comments';
    throw new ConfigError(file, [`${what}: a reload needs the whole configuration (write the new file beside it, then rename it over this one)`]);
  }
  return buildConfig(documentValue(doc, file), file, dirname(file));
}

/**
 * The value of a parsed document. The reader refuses aliases that expand without bound (a
 * "billion laughs" file): a problem of the file, reported as such rather than as a crash.
 */
export function documentValue(doc: Document, file: string): unknown {
  try {
    return doc.toJS();
  } catch (e) {
    const msg = (e as Error).message;
    throw new ConfigError(file, [`YAML: ${msg}${/alias/i.test(msg) ? '; use fewer aliases (*name) or write the values out' : ''}`]);
  }
}
