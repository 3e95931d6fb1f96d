// `fedns join` / `fedns unjoin`: add a member cluster to the federation, or take it out again.
//
// join CLUSTER:
//   1. plans the clusters[] entry in fedns's configuration file and validates the result
//      (nothing is written yet);
//   2. points the member's cluster DNS at fedns for the federation domain: kube-dns
//      (kube-system/kube-dns: data.stubDomains + data.federations) and/or CoreDNS
//      (kube-system/coredns: a marked server block in data.Corefile), each with GET + PUT carrying
//      the resourceVersion and a bounded retry on 409 Conflict (never a blind overwrite);
//   3. writes the configuration file (atomically).
// unjoin CLUSTER removes exactly what join added: first from the member (so that a failure
// leaves the entry, with the kubeconfig unjoin needs, for a retry), then the entry.
//
// Keys of the kube-dns ConfigMap that join had to create are recorded in the annotation
// fedns.io/created-keys ({"<federation>": ["stubDomains", ...]}); unjoin deletes such a key when
// nothing else is left in it, and otherwise leaves the key in place (stubDomains "{}",
// federations "" are what kube-dns reads as "none"). So join + unjoin restores the ConfigMap
// as it was.
import { dirname, resolve } from 'node:path';
import { isIP } from 'node:net';
import { ConfigError } from '../config/load.js';
import { unifiedDiff } from './diff.js';
import {
  EditError,
  addFederation,
  bareDomain,
  mergeStubDomains,
  removeCorefileBlock,
  removeFederation,
  removeStubDomain,
  stubDomainsEmpty,
  upsertCorefileBlock,
} from './edit.js';
import {
  addCluster,
  federationOf,
  findCluster,
  kubeconfigRef,
  readConfigText,
  removeCluster,
  validateConfigText,
  type ConfigEdit,
} from './config-file.js';
import { writeFileAtomic } from '../atomic-file.js';
import { KubeError, MemberClient, type ConfigMap } from './kube.js';

export const DNS_NAMESPACE = 'kube-system';
export const KUBE_DNS = 'kube-dns';
export const COREDNS = 'coredns';
export const CREATED_KEYS_ANNOTATION = 'fedns.io/created-keys';
const DEFAULT_ATTEMPTS = 5;

/** A problem with the command's input or the member's state; the message says what to fix. */
export class JoinError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JoinError';
  }
}

/** One changed value: a ConfigMap key, an annotation or the configuration file. */
export interface Change {
  target: string;
  before?: string;
  after?: string;
}

export interface RunResult {
  /** Something changed (with dryRun: would change). */
  changed: boolean;
  dryRun: boolean;
  changes: Change[];
  /** 409 Conflicts that were retried. */
  conflicts: number;
  /** The report printed by the CLI (ends with a newline). */
  output: string;
}

export interface JoinOptions {
  cluster: string;
  /** Member kubeconfig (relative to cwd). */
  kubeconfig: string;
  context?: string;
  /** "IP[:PORT]" (IPv6 as [addr]:port), or several, as a list or comma-separated. */
  nameserver: string | string[];
  /** fedns configuration file (relative to cwd). */
  config: string;
  region?: string;
  /** List or "a,b". */
  zones?: string[] | string;
  dryRun?: boolean;
  cwd?: string;
  /** Bound on GET+PUT attempts per ConfigMap (409 Conflict retries). Default 5. */
  maxAttempts?: number;
  /** Per-request timeout. Default 15 s. */
  timeoutMs?: number;
}

export interface UnjoinOptions {
  cluster: string;
  config: string;
  dryRun?: boolean;
  /** Use this kubeconfig instead of the cluster entry's (e.g. when the entry is gone). */
  kubeconfig?: string;
  context?: string;
  /** Only edit the configuration file (the member is gone or unreachable). */
  skipCluster?: boolean;
  cwd?: string;
  maxAttempts?: number;
  timeoutMs?: number;
}

// ---------------------------------------------------------------------------------------------
// Input

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * "192.0.2.53" | "192.0.2.53:1053" | "2001:db8::53" | "[2001:db8::53]:1053" -> the form DNS
 * configs take: "ip:port" ("[v6]:port"), or just the address when the port is 53.
 */
export function parseNameserver(s: string): string {
  const t = s.trim();
  const bad = () =>
    new JoinError(`--nameserver ${JSON.stringify(s)}: expected the IP address fedns is reachable at from the member cluster, as IP or IP:PORT (IPv6 as [addr]:port), e.g. 192.0.2.53:1053`);
  let host: string;
  let port = 53;
  let m: RegExpExecArray | null;
  if ((m = /^\[([^\]]+)\](?::(\d+))?$/.exec(t))) {
    host = m[1];
    if (m[2] !== undefined) port = Number(m[2]);
    if (isIP(host) !== 6) throw bad();
  } else if (isIP(t) === 6) {
    host = t;
  } else if ((m = /^([^:]+)(?::(\d+))?$/.exec(t))) {
    host = m[1];
    if (m[2] !== undefined) port = Number(m[2]);
    if (isIP(host) !== 4) throw bad();
  } else throw bad();
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad();
  if (port === 53) return host;
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function parseNameservers(v: string | string[]): string[] {
  const list = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new JoinError('--nameserver: give the address of fedns as the member cluster reaches it, e.g. 192.0.2.53:1053');
  return [...new Set(list.map(parseNameserver))];
}

function parseZones(v: string[] | string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const list = (Array.isArray(v) ? v : v.split(',')).map((z) => z.trim()).filter(Boolean);
  for (const z of list) if (!DNS_LABEL.test(z)) throw new JoinError(`--zones: "${z}" must be a lowercase DNS label (letters, digits, "-")`);
  return list;
}

function checkClusterName(name: string): void {
  if (!DNS_LABEL.test(name)) throw new JoinError(`cluster name "${name}": must be a lowercase DNS label (letters, digits, "-", at most 63), as clusters[].name`);
}

// ---------------------------------------------------------------------------------------------
// ConfigMap edits (mutate the given object, return what changed)

function key(cm: ConfigMap, k: string): string {
  return `${cm.metadata.namespace ?? DNS_NAMESPACE}/${cm.metadata.name} data.${k}`;
}

function wrapEdit<T>(cm: ConfigMap, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof EditError)
      throw new JoinError(`${cm.metadata.namespace ?? DNS_NAMESPACE}/${cm.metadata.name} data.${e.message}; fix the ConfigMap (kubectl -n ${cm.metadata.namespace ?? DNS_NAMESPACE} edit configmap ${cm.metadata.name}) and run the command again`);
    throw e;
  }
}

function readCreated(cm: ConfigMap): Record<string, string[]> {
  const raw = cm.metadata.annotations?.[CREATED_KEYS_ANNOTATION];
  if (!raw) return {};
  try {
    const v = JSON.parse(raw) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
    const out: Record<string, string[]> = {};
    for (const [k, list] of Object.entries(v)) if (Array.isArray(list)) out[k] = list.filter((x): x is string => typeof x === 'string');
    return out;
  } catch {
    return {};
  }
}

function writeCreated(cm: ConfigMap, created: Record<string, string[]>, changes: Change[]): void {
  const before = cm.metadata.annotations?.[CREATED_KEYS_ANNOTATION];
  const entries = Object.entries(created).filter(([, l]) => l.length > 0);
  const after = entries.length ? JSON.stringify(Object.fromEntries(entries)) : undefined;
  if (before === after) return;
  const annotations = { ...(cm.metadata.annotations ?? {}) };
  if (after === undefined) delete annotations[CREATED_KEYS_ANNOTATION];
  else annotations[CREATED_KEYS_ANNOTATION] = after;
  if (Object.keys(annotations).length) cm.metadata.annotations = annotations;
  else delete cm.metadata.annotations;
  changes.push({ target: `${cm.metadata.namespace ?? DNS_NAMESPACE}/${cm.metadata.name} metadata.annotations["${CREATED_KEYS_ANNOTATION}"]`, before, after });
}

function setData(cm: ConfigMap, k: string, value: string | undefined, changes: Change[]): void {
  const before = cm.data?.[k];
  if (before === value) return;
  const data = { ...(cm.data ?? {}) };
  if (value === undefined) delete data[k];
  else data[k] = value;
  cm.data = data;
  changes.push({ target: key(cm, k), before, after: value });
}

/** The marker name of the clusterset zone's Corefile block (a space: no federation name has one). */
export const clusterSetBlock = (fed: string): string => `${fed} mcs`;

/** kube-dns: stubDomains[domain] = servers (and [mcsDomain], the clusterset zone), federations += fed=domain. */
export function joinKubeDns(cm: ConfigMap, fed: string, domain: string, servers: readonly string[], mcsDomain?: string): Change[] {
  return wrapEdit(cm, () => {
    const changes: Change[] = [];
    const created = readCreated(cm);
    const mine = new Set(created[fed] ?? []);
    const sd = cm.data?.stubDomains;
    const fl = cm.data?.federations;
    let newSd = mergeStubDomains(sd, domain, servers);
    if (mcsDomain) newSd = mergeStubDomains(newSd, mcsDomain, servers);
    const newFl = addFederation(fl, fed, domain);
    if (sd === undefined) mine.add('stubDomains');
    if (fl === undefined) mine.add('federations');
    setData(cm, 'stubDomains', newSd, changes);
    setData(cm, 'federations', newFl, changes);
    if (changes.length) writeCreated(cm, { ...created, [fed]: [...mine].sort() }, changes);
    return changes;
  });
}

/** kube-dns: the inverse of joinKubeDns. */
export function unjoinKubeDns(cm: ConfigMap, fed: string, domain: string, mcsDomain?: string): Change[] {
  return wrapEdit(cm, () => {
    const changes: Change[] = [];
    const created = readCreated(cm);
    const mine = new Set(created[fed] ?? []);
    let sd = removeStubDomain(cm.data?.stubDomains, domain);
    if (mcsDomain) sd = removeStubDomain(sd, mcsDomain);
    const fl = removeFederation(cm.data?.federations, fed, domain);
    const dropSd = mine.has('stubDomains') && sd !== undefined && stubDomainsEmpty(sd);
    const dropFl = mine.has('federations') && fl !== undefined && fl.trim() === '';
    setData(cm, 'stubDomains', dropSd ? undefined : sd, changes);
    setData(cm, 'federations', dropFl ? undefined : fl, changes);
    if (created[fed]) {
      const rest = { ...created };
      delete rest[fed];
      writeCreated(cm, rest, changes);
    }
    return changes;
  });
}

/** CoreDNS: the marked server block forwarding domain to servers (and one for mcsDomain, the clusterset zone). */
export function joinCoreDns(cm: ConfigMap, fed: string, domain: string, servers: readonly string[], mcsDomain?: string): Change[] {
  return wrapEdit(cm, () => {
    const corefile = cm.data?.Corefile;
    if (corefile === undefined)
      throw new JoinError(`${cm.metadata.namespace ?? DNS_NAMESPACE}/${cm.metadata.name} has no data.Corefile; is CoreDNS configured from another ConfigMap?`);
    const changes: Change[] = [];
    let next = upsertCorefileBlock(corefile, fed, domain, servers);
    next = mcsDomain ? upsertCorefileBlock(next, clusterSetBlock(fed), mcsDomain, servers) : removeCorefileBlock(next, clusterSetBlock(fed));
    setData(cm, 'Corefile', next, changes);
    return changes;
  });
}

/** CoreDNS: the inverse of joinCoreDns. */
export function unjoinCoreDns(cm: ConfigMap, fed: string): Change[] {
  return wrapEdit(cm, () => {
    const corefile = cm.data?.Corefile;
    if (corefile === undefined) return [];
    const changes: Change[] = [];
    setData(cm, 'Corefile', removeCorefileBlock(removeCorefileBlock(corefile, clusterSetBlock(fed)), fed), changes);
    return changes;
  });
}

// ---------------------------------------------------------------------------------------------
// Applying to the member

interface Planned {
  name: string;
  /** As read (undefined: the ConfigMap does not exist). */
  current?: ConfigMap;
  changes: Change[];
  conflicts: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET both DNS ConfigMaps and work out the edits (so that a bad value fails before any write). */
async function plan(client: MemberClient, edits: Record<string, (cm: ConfigMap) => Change[]>): Promise<Planned[]> {
  const out: Planned[] = [];
  for (const [name, edit] of Object.entries(edits)) {
    const current = await client.getConfigMap(DNS_NAMESPACE, name);
    out.push({ name, current, changes: current ? edit(structuredClone(current)) : [], conflicts: 0 });
  }
  return out;
}

/** GET, edit, PUT with the resourceVersion read; on 409 start over, at most `attempts` times. */
async function apply(client: MemberClient, p: Planned, edit: (cm: ConfigMap) => Change[], attempts: number): Promise<void> {
  let cm = p.current;
  for (let attempt = 1; ; attempt++) {
    if (!cm) {
      cm = await client.getConfigMap(DNS_NAMESPACE, p.name);
      if (!cm) throw new JoinError(`${DNS_NAMESPACE}/${p.name} was deleted while fedns was editing it; run the command again`);
    }
    const next = structuredClone(cm);
    p.changes = edit(next);
    if (p.changes.length === 0) return;
    try {
      await client.replaceConfigMap(next);
      return;
    } catch (e) {
      if (!(e instanceof KubeError) || !e.conflict) throw e;
      if (attempt >= attempts)
        throw new JoinError(
          `${DNS_NAMESPACE}/${p.name}: still conflicting after ${attempts} attempts (someone else keeps changing it; each attempt re-read it and got 409 Conflict on the update); run the command again`,
        );
      p.conflicts++;
      cm = undefined;
      await sleep(Math.min(1000, 50 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting

function summary(p: Planned, dryRun: boolean): string {
  const where = `${DNS_NAMESPACE}/${p.name}`;
  if (!p.current) return `  ${where}: not present (skipped)`;
  if (p.changes.length === 0) return `  ${where}: already up to date`;
  const what = p.changes.map((c) => c.target.slice(where.length + 1)).join(', ');
  return `  ${where}: ${dryRun ? 'would update' : 'updated'} ${what}${p.conflicts ? ` (after ${p.conflicts} conflict${p.conflicts > 1 ? 's' : ''}, re-read and retried)` : ''}`;
}

function configSummary(file: string, edit: ConfigEdit, cluster: string, dryRun: boolean): string {
  const verb: Record<ConfigEdit['action'], string> = {
    added: dryRun ? `would add cluster "${cluster}"` : `added cluster "${cluster}"`,
    updated: dryRun ? `would update cluster "${cluster}"` : `updated cluster "${cluster}"`,
    removed: dryRun ? `would remove cluster "${cluster}"` : `removed cluster "${cluster}"`,
    unchanged: `cluster "${cluster}" already up to date`,
    absent: `no cluster "${cluster}" (nothing to remove)`,
  };
  return `  ${file}: ${verb[edit.action]}`;
}

function diffs(changes: Change[]): string {
  return changes.map((c) => unifiedDiff(c.before, c.after, c.target)).join('');
}

function result(header: string, lines: string[], changes: Change[], conflicts: number, dryRun: boolean): RunResult {
  const changed = changes.length > 0;
  const tail = dryRun ? (changed ? 'dry run: nothing was changed' : 'dry run: nothing would change') : changed ? 'done' : 'nothing to change';
  const body = dryRun && changed ? `\n${diffs(changes)}\n` : '';
  return { changed, dryRun, changes, conflicts, output: `${header}\n${lines.join('\n')}\n${body}${tail}\n` };
}

function validateAfter(text: string, file: string, what: string): void {
  try {
    validateConfigText(text, file);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(file, [...e.problems, `(the file was not changed: this is what it would be ${what})`]);
    throw e;
  }
}

function writeConfig(file: string, edit: ConfigEdit): void {
  if (readConfigText(file) !== edit.before)
    throw new JoinError(`${file} changed while fedns was editing it (the member cluster's DNS is already done); run the command again to update the file`);
  try {
    writeFileAtomic(file, edit.after);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new JoinError(`cannot write ${file} (${code}); the member cluster's DNS is already done: make the file writable (or use a copy) and run the command again, it is idempotent`);
  }
}

// ---------------------------------------------------------------------------------------------
// join / unjoin

/** `fedns join`. Throws JoinError / KubeError / ConfigError with a message naming what to fix. */
export async function join(opts: JoinOptions): Promise<RunResult> {
  const cwd = opts.cwd ?? process.cwd();
  const dryRun = !!opts.dryRun;
  const attempts = opts.maxAttempts ?? DEFAULT_ATTEMPTS;
  checkClusterName(opts.cluster);
  const servers = parseNameservers(opts.nameserver);
  const zones = parseZones(opts.zones);
  const file = resolve(cwd, opts.config);
  const text = readConfigText(file);
  const { domain, federation, mcsDomain } = federationOf(text, file);
  const kubeconfig = resolve(cwd, opts.kubeconfig);
  const client = await MemberClient.open(kubeconfig, opts.context, opts.timeoutMs);

  const edit = addCluster(text, file, {
    name: opts.cluster,
    region: opts.region,
    zones,
    kubeconfig: kubeconfigRef(file, kubeconfig, cwd),
    context: client.context,
  });
  if (edit.action !== 'unchanged') validateAfter(edit.after, file, `after adding cluster "${opts.cluster}"`);

  const edits = {
    [KUBE_DNS]: (cm: ConfigMap) => joinKubeDns(cm, federation, domain, servers, mcsDomain),
    [COREDNS]: (cm: ConfigMap) => joinCoreDns(cm, federation, domain, servers, mcsDomain),
  };
  const planned = await plan(client, edits);
  if (planned.every((p) => !p.current))
    throw new JoinError(
      `neither ConfigMap ${DNS_NAMESPACE}/${KUBE_DNS} (kube-dns) nor ${DNS_NAMESPACE}/${COREDNS} (CoreDNS) exists on ${client.server} (context "${client.context}" of kubeconfig ${kubeconfig}); fedns join forwards ${bareDomain(domain)} by editing one of them. Is that the right cluster, and does its DNS use one of these?`,
    );
  if (!dryRun) for (const p of planned) if (p.current && p.changes.length) await apply(client, p, edits[p.name as keyof typeof edits], attempts);

  const configChange: Change[] = edit.action === 'unchanged' ? [] : [{ target: file, before: edit.before, after: edit.after }];
  if (!dryRun && edit.action !== 'unchanged') writeConfig(file, edit);

  const coredns = planned.find((p) => p.name === COREDNS && p.current);
  const corefile = coredns?.current?.data?.Corefile;
  const noReload =
    coredns && corefile !== undefined && !/^\s*reload\b/m.test(corefile)
      ? [`  note: the Corefile has no "reload" plugin, so CoreDNS will not pick the change up by itself: kubectl -n ${DNS_NAMESPACE} rollout restart deployment coredns`]
      : [];
  const header = `${dryRun ? 'dry run: ' : ''}join cluster "${opts.cluster}" (context "${client.context}", ${client.server}) to federation ${federation} (${bareDomain(domain)}) at ${servers.join(', ')}`;
  const lines = [...planned.map((p) => summary(p, dryRun)), ...(coredns?.changes.length ? noReload : []), configSummary(file, edit, opts.cluster, dryRun)];
  const changes = [...planned.flatMap((p) => p.changes), ...configChange];
  return result(header, lines, changes, planned.reduce((n, p) => n + p.conflicts, 0), dryRun);
}

/** `fedns unjoin`. Idempotent: a cluster that is not (or no longer) joined is a no-op. */
export async function unjoin(opts: UnjoinOptions): Promise<RunResult> {
  const cwd = opts.cwd ?? process.cwd();
  const dryRun = !!opts.dryRun;
  const attempts = opts.maxAttempts ?? DEFAULT_ATTEMPTS;
  checkClusterName(opts.cluster);
  const file = resolve(cwd, opts.config);
  const text = readConfigText(file);
  const { domain, federation, mcsDomain } = federationOf(text, file);
  const entry = findCluster(text, file, opts.cluster);
  const header = `${dryRun ? 'dry run: ' : ''}unjoin cluster "${opts.cluster}" from federation ${federation} (${bareDomain(domain)})`;
  const lines: string[] = [];

  let kubeconfig: string | undefined;
  let context: string | undefined;
  if (opts.kubeconfig) {
    kubeconfig = resolve(cwd, opts.kubeconfig);
    context = opts.context;
  } else if (entry?.source?.type === 'kube' && entry.source.kubeconfig) {
    kubeconfig = resolve(dirname(file), entry.source.kubeconfig);
    context = opts.context ?? entry.source.context;
  }

  let planned: Planned[] = [];
  if (opts.skipCluster) {
    lines.push('  member cluster: not touched (--skip-cluster)');
  } else if (!kubeconfig) {
    if (!entry) {
      lines.push(`  ${file}: no cluster "${opts.cluster}" (already unjoined?); its DNS is not touched (give --kubeconfig to clean it anyway)`);
      return result(header, lines, [], 0, dryRun);
    }
    if (entry.source?.type === 'kube')
      throw new JoinError(
        `cluster "${opts.cluster}" in ${file} has no kubeconfig (inCluster); give --kubeconfig (and --context) for the member cluster, or --skip-cluster to only remove the entry`,
      );
    lines.push(`  member cluster: not touched (cluster "${opts.cluster}" is read from ${entry.source?.type ?? 'an unknown'} source, join never edited its DNS)`);
  } else {
    const client = await MemberClient.open(kubeconfig, context, opts.timeoutMs).catch((e: unknown) => {
      if (e instanceof KubeError) throw new KubeError(`${e.message} (or rerun with --skip-cluster to only remove the entry from ${file})`, e.status);
      throw e;
    });
    const edits = {
      [KUBE_DNS]: (cm: ConfigMap) => unjoinKubeDns(cm, federation, domain, mcsDomain),
      [COREDNS]: (cm: ConfigMap) => unjoinCoreDns(cm, federation),
    };
    try {
      planned = await plan(client, edits);
      if (!dryRun) for (const p of planned) if (p.current && p.changes.length) await apply(client, p, edits[p.name as keyof typeof edits], attempts);
    } catch (e) {
      if (e instanceof KubeError && e.status !== 409)
        throw new KubeError(`${e.message} (the configuration was not changed; fix access and run again, or rerun with --skip-cluster to only remove the entry)`, e.status);
      throw e;
    }
    lines.push(`  member: context "${client.context}", ${client.server}`);
    lines.push(...planned.map((p) => summary(p, dryRun)));
  }

  const edit = removeCluster(text, file, opts.cluster);
  if (edit.action === 'removed') validateAfter(edit.after, file, `after removing cluster "${opts.cluster}"`);
  if (!dryRun && edit.action === 'removed') writeConfig(file, edit);
  lines.push(configSummary(file, edit, opts.cluster, dryRun));
  const changes = [...planned.flatMap((p) => p.changes), ...(edit.action === 'removed' ? [{ target: file, before: edit.before, after: edit.after }] : [])];
  return result(header, lines, changes, planned.reduce((n, p) => n + p.conflicts, 0), dryRun);
}
