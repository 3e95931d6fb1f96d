// Loading the configuration: YAML in, a validated Config out, or errors that name the file,
// the field and what is wrong. Nothing starts on a half-valid file.
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
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

function issueText(issue: z.core.$ZodIssue): string {
  let msg = issue.message;
  if (issue.code === 'unrecognized_keys') msg = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling)`;
  return `${fieldPath(issue.path)}: ${msg}`;
}

/** Validates an already-parsed document; paths in it resolve against `baseDir`. */
export function buildConfig(raw: unknown, file: string, baseDir: string): Config {
  const result = configSchema.safeParse(raw ?? {});
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
  if (c.transfer.serialFile) c.transfer.serialFile = resolve(baseDir, c.transfer.serialFile);
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

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Reads and validates a YAML configuration file. Throws ConfigError. */
export function loadConfig(path: string): Config {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [`cannot read the file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new ConfigError(file, doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0].replace(/:$/, '')}`));
  return buildConfig(doc.toJS(), file, dirname(file));
}
