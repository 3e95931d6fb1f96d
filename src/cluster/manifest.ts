// What a manifest file holds: the objects of its text, JSON or YAML (a List, or multi-document
// YAML), as fedns holds them. Used by the files cluster source (files.ts) on the main thread, and
// by the page worker (page-worker.ts) for big files.
import { parseAllDocuments } from 'yaml';
import {
  ObjectError,
  slimEndpointSlice,
  slimNode,
  slimService,
  slimServiceExport,
  type Kind,
  type SlimNode,
  slimServiceImport,
  slimClusterProperty,
} from './objects.js';
import type { ClusterInventory } from './state.js';

/** What a manifest directory holds: the cluster's objects, and its Nodes. */
export interface ManifestInventory extends ClusterInventory {
  nodes: SlimNode[];
  /**
   * Objects skipped because fedns cannot read them (a name that is not a DNS label, a Service
   * without metadata): their kind, and "file: what is wrong". The kube source skips such objects
   * too; the rest of the file, and the cluster, are read as usual.
   */
  unreadable: { kind: Kind | 'Node'; what: string }[];
}

/**
 * Lists nested deeper are refused: kubectl writes one List of objects, and each level is a frame
 * of the stack, which ran out (a RangeError without the file's name) past some thousands.
 */
const MAX_LIST_DEPTH = 32;

export const emptyInventory = (): ManifestInventory => ({ services: [], slices: [], exports: [], imports: [], properties: [], nodes: [], unreadable: [] });

/** A manifest file that cannot be read or parsed, by name. */
export class ManifestError extends Error {
  constructor(
    readonly file: string,
    /** What is wrong with it. */
    readonly detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

/**
 * The objects of one manifest file's text: JSON (parsed as JSON, much faster) or YAML, one or
 * more documents, as `file`'s name says. Throws ManifestError when it does not parse.
 */
export function parseManifestText(file: string, text: string): ManifestInventory {
  const inv = emptyInventory();
  if (/\.json$/i.test(file)) {
    if (text.trim() === '') return inv;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      throw new ManifestError(file, `JSON: ${(e as Error).message}`);
    }
    if (obj != null) collect(obj, file, inv);
    return inv;
  }
  const docs = parseAllDocuments(text);
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length) throw new ManifestError(file, `YAML: ${doc.errors[0].message.split('\n')[0].replace(/:$/, '')}`);
    let obj: unknown;
    try {
      obj = doc.toJS();
    } catch (e) {
      // The reader refuses aliases that expand without bound ("billion laughs").
      throw new ManifestError(file, `YAML: ${(e as Error).message}`);
    }
    if (obj == null) continue;
    collect(obj, file, inv);
  }
  return inv;
}

function collect(obj: unknown, file: string, inv: ManifestInventory, depth = 0): void {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new ManifestError(file, 'expected a Kubernetes object or List');
  const o = obj as Record<string, any>;
  const kind = o.kind;
  try {
    if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(o.items)) {
      if (depth >= MAX_LIST_DEPTH) throw new ManifestError(file, `Lists nested more than ${MAX_LIST_DEPTH} deep`);
      const itemKind = kind === 'List' ? undefined : kind.slice(0, -4);
      for (const item of o.items) collect(itemKind && item && !item.kind ? { ...item, kind: itemKind } : item, file, inv, depth + 1);
    } else if (kind === 'Service') inv.services.push(slimService(o));
    else if (kind === 'EndpointSlice') inv.slices.push(slimEndpointSlice(o));
    else if (kind === 'ServiceExport') inv.exports.push(slimServiceExport(o));
    else if (kind === 'Node') inv.nodes.push(slimNode(o));
    else if (kind === 'ServiceImport') inv.imports!.push(slimServiceImport(o));
    else if (kind === 'ClusterProperty') inv.properties!.push(slimClusterProperty(o));
    else if (typeof kind !== 'string') throw new ManifestError(file, 'object without a kind');
    // Other kinds (Deployments, ...) are ignored.
  } catch (e) {
    if (!(e instanceof ObjectError)) throw e;
    inv.unreadable.push({ kind: kind as Kind | 'Node', what: `${file}: ${e.message}` });
  }
}
