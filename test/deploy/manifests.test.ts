/**
 * The deployment manifests (config/deploy/*.yaml) are consistent with each other and with fedns:
 * the embedded configuration validates (schema, and fully with buildConfig on the file layout
 * the pod gets), the ports/probes/Service agree with its listen and ops addresses, the
 * Deployment is spread and protected by a PDB, the pod is locked down, and the RBAC grants
 * exactly what fedns (and `fedns join`) use.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { buildConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { join as fednsJoin, unjoin as fednsUnjoin } from '../../src/join/join.js';
import { loadMemberKubeConfig } from '../../src/join/kube.js';
import { HEALTH_STATES } from '../../src/cluster/state.js';
import { Rcode } from '../../src/wire/constants.js';
import { NOTIFY_RESULTS } from '../../src/server/notify.js';
import { TRANSFER_RESULTS } from '../../src/server/xfr.js';
import { ROOT, demoCopy, startDemo } from '../support/demo.js';
import { FakeApiServer, type RequestRecord } from '../support/fake-apiserver.js';
import { eventuallyWith, kubeHarness, node, publish, same, serviceExport } from '../support/kube-harness.js';
import * as k8s from '@kubernetes/client-node';

type Obj = Record<string, any>; // manifests are free-form JSON; the tests check the shape

const DIR = join(ROOT, 'config', 'deploy');
const FILES = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort();

function load(file: string): Obj[] {
  const text = readFileSync(join(DIR, file), 'utf8');
  // kubectl reads YAML 1.1 (sigs.k8s.io/yaml): make sure nothing means something else there
  // (0644, yes/no, on/off, ...) than in YAML 1.2.
  const v12 = parseAllDocuments(text);
  const v11 = parseAllDocuments(text, { version: '1.1' });
  const out: Obj[] = [];
  (Array.isArray(v12) ? v12 : [v12]).forEach((doc, i) => {
    expect(doc.errors, `${file} document ${i + 1}`).toEqual([]);
    const js = doc.toJS() as Obj | null;
    const js11 = (Array.isArray(v11) ? v11 : [v11])[i].toJS() as Obj | null;
    expect(js11, `${file} document ${i + 1} reads the same as YAML 1.1`).toEqual(js);
    if (js) out.push({ ...js, __file: file });
  });
  return out;
}

const DOCS = FILES.flatMap(load);
const find = (kind: string, name: string, file?: string): Obj => {
  const o = DOCS.find((d) => d.kind === kind && d.metadata?.name === name && (!file || d.__file === file));
  if (!o) throw new Error(`no ${kind} ${name} in config/deploy`);
  return o;
};
const all = (kind: string, file?: string) => DOCS.filter((d) => d.kind === kind && (!file || d.__file === file));

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

const deployment = find('Deployment', 'fedns');
const pod = deployment.spec.template.spec as Obj;
const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
const container = (pod.containers as Obj[]).find((c) => c.name === 'fedns')!;
const containerPorts = container.ports as Array<{ name?: string; containerPort: number; protocol?: string }>;

/** The embedded configuration the container is started with, following args -> mount -> volume -> ConfigMap. */
function embeddedConfig(): { path: string; text: string; volume: Obj; mountPath: string } {
  const args = container.args as string[];
  const path = args[args.indexOf('--config') + 1];
  const mount = (container.volumeMounts as Obj[]).find((m) => path.startsWith(`${m.mountPath}/`))!;
  expect(mount, `a volume mounted above ${path}`).toBeDefined();
  const volume = (pod.volumes as Obj[]).find((v) => v.name === mount.name)!;
  const rel = posix.relative(mount.mountPath, path);
  const sources = (volume.projected?.sources ?? [{ configMap: volume.configMap }]) as Obj[];
  for (const s of sources) {
    const item = (s.configMap?.items as Obj[] | undefined)?.find((i) => i.path === rel);
    if (item) {
      const cm = find('ConfigMap', s.configMap.name);
      return { path, text: cm.data[item.key], volume, mountPath: mount.mountPath };
    }
  }
  throw new Error(`${path} is not provided by a ConfigMap in volume ${volume.name}`);
}

const EMBEDDED = embeddedConfig();
const RAW = parse(EMBEDDED.text) as Obj;
const PARSED = configSchema.parse(RAW);

function resolvePort(target: number | string, protocol = 'TCP'): number | undefined {
  const p = containerPorts.find((c) => (typeof target === 'number' ? c.containerPort === target : c.name === target) && (c.protocol ?? 'TCP') === protocol);
  return p?.containerPort;
}

// ---------------------------------------------------------------------------------------------
// Kubernetes schemas: every object is checked by the OpenAPI schema validators of the
// kubernetes-models packages (types, formats, required fields, enums). Those let unknown fields
// through, which kubectl's default strict field validation refuses, so field names are checked
// too: every field must be one the validator looked at (it reads the properties its schema
// defines, and walks maps), and for built-in kinds one the model classes of
// @kubernetes/client-node define.

/** The kubernetes-models class for an apiVersion/kind ("apps/v1" Deployment -> kubernetes-models/apps/v1/Deployment). */
async function schemaModel(apiVersion: string, kind: string): Promise<{ validate(): void } & (new (o: Obj) => { validate(): void })> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const pkg = group === 'monitoring.coreos.com' ? '@kubernetes-models/prometheus-operator' : 'kubernetes-models';
  const mod = (await import(`${pkg}/${group ? `${group}/` : ''}${version}/${kind}`)) as Obj;
  return mod[kind];
}

/**
 * Validates `obj` with `Model` and returns the paths of its fields the validator never read
 * (below the top level, which the model copies: apiVersion, kind, metadata, spec, ...).
 */
function validateFields(Model: new (o: Obj) => { validate(): void }, obj: Obj): string[] {
  const read = new Set<string>();
  const child = (parent: object, key: string, path: string) => (Array.isArray(parent) ? `${path}[${key}]` : `${path}.${key}`);
  const tracked = (value: unknown, path: string): unknown =>
    value !== null && typeof value === 'object'
      ? new Proxy(value, {
          get(t, k, r) {
            const v = Reflect.get(t, k, r) as unknown;
            if (typeof k !== 'string' || !Object.hasOwn(t, k)) return v;
            read.add(child(t, k, path));
            return tracked(v, child(t, k, path));
          },
        })
      : value;
  const m = new Model(obj) as unknown as Obj;
  for (const k of Object.keys(obj)) m[k] = tracked(m[k], k);
  m.validate();
  const fields = (v: unknown, path: string): string[] =>
    v !== null && typeof v === 'object' ? Object.entries(v).flatMap(([k, x]) => [child(v, k, path), ...fields(x, child(v, k, path))]) : [];
  return Object.entries(obj).flatMap(([k, v]) => fields(v, k)).filter((p) => !read.has(p));
}

type AttributeMap = Array<{ baseName: string; type: string }>;
const models = k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttributeMap } | undefined>;

/** Field paths of `value` that the client-node model `type` does not have. */
function unknownFields(value: unknown, type: string, path: string): string[] {
  if (value === null || value === undefined) return [];
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, arr[1], `${path}[${i}]`)) : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return typeof value === 'object' ? Object.entries(value as Obj).flatMap(([k, v]) => unknownFields(v, map[1], `${path}.${k}`)) : [];
  const attrs = models[type]?.getAttributeTypeMap?.();
  if (!attrs || typeof value !== 'object') return []; // a scalar, IntOrString, Date, any: the schema validators check those
  const byName = new Map(attrs.map((a) => [a.baseName, a.type]));
  return Object.entries(value as Obj).flatMap(([k, v]) => (byName.has(k) ? unknownFields(v, byName.get(k)!, `${path}.${k}`) : [`${path}.${k}`]));
}

/** The client-node model class of a built-in kind ("policy/v1" PodDisruptionBudget -> V1PodDisruptionBudget). */
function clientModel(apiVersion: string, kind: string): string | undefined {
  const version = apiVersion.split('/').pop()!;
  const name = `${version[0].toUpperCase()}${version.slice(1)}${kind}`;
  return models[name]?.getAttributeTypeMap ? name : undefined;
}

describe('config/deploy against the Kubernetes schemas', () => {
  const BUILT_IN = /^(v1|(apps|policy|networking\.k8s\.io|rbac\.authorization\.k8s\.io)\/v1)$/;

  it.each(DOCS.map((d) => [`${d.__file} ${d.kind} ${d.metadata?.name}`, d] as const))('%s validates', async (_, doc) => {
    const { __file, ...obj } = doc;
    const Model = await schemaModel(obj.apiVersion, obj.kind);
    expect(Model, `a schema for ${obj.apiVersion} ${obj.kind}`).toBeDefined();
    expect(validateFields(Model, obj), 'fields the schema does not define').toEqual([]);
    if (BUILT_IN.test(obj.apiVersion)) {
      const type = clientModel(obj.apiVersion, obj.kind);
      expect(type, `client-node model for ${obj.apiVersion} ${obj.kind}`).toBeDefined();
      expect(unknownFields(obj, type!, obj.kind)).toEqual([]);
    }
  });

  it('the checks can fail: a wrong type, a missing required field, a misspelt field, a bad quantity', async () => {
    const bad = (f: (d: Obj) => void) => {
      const d = structuredClone(deployment);
      delete d.__file;
      f(d);
      return d;
    };
    const Deployment = await schemaModel('apps/v1', 'Deployment');
    expect(() => new Deployment(bad((d) => (d.spec.replicas = '2'))).validate()).toThrow(/spec\/replicas must be integer/);
    expect(() => new Deployment(bad((d) => delete d.spec.selector)).validate()).toThrow(/spec must have required property selector/);
    expect(() => new Deployment(bad((d) => (d.spec.template.spec.containers[0].resources.limits.memory = '64 MB'))).validate()).toThrow(/memory/);
    expect(unknownFields(bad((d) => (d.spec.template.spec.containers[0].readOnlyRootFilesystem = true)), 'V1Deployment', 'Deployment')).toEqual([
      'Deployment.spec.template.spec.containers[0].readOnlyRootFilesystem',
    ]);
    const PrometheusRule = await schemaModel('monitoring.coreos.com/v1', 'PrometheusRule');
    const rule = structuredClone(find('PrometheusRule', 'fedns'));
    delete rule.__file;
    rule.spec.groups[0].rules[0].for = 'five minutes';
    expect(() => new PrometheusRule(rule).validate()).toThrow(/for must match pattern/);
    const ServiceMonitor = await schemaModel('monitoring.coreos.com/v1', 'ServiceMonitor');
    const sm = structuredClone(find('ServiceMonitor', 'fedns'));
    delete sm.__file;
    sm.spec.endpoints[0].intervall = '15s';
    expect(validateFields(ServiceMonitor, sm)).toEqual(['spec.endpoints[0].intervall']);
    expect(validateFields(Deployment, bad((d) => (d.spec.template.spec.hostnetwork = true)))).toEqual(['spec.template.spec.hostnetwork']);
  });
});

describe('config/deploy manifests', () => {
  it('parse, have apiVersion/kind/name, and no object is defined twice', () => {
    expect(FILES).toEqual(expect.arrayContaining(['fedns.yaml', 'member.yaml']));
    const keys = DOCS.map((d) => {
      expect(typeof d.apiVersion, JSON.stringify(d).slice(0, 80)).toBe('string');
      expect(typeof d.kind).toBe('string');
      expect(typeof d.metadata?.name).toBe('string');
      return `${d.__file} ${d.kind} ${d.metadata.namespace ?? ''}/${d.metadata.name}`;
    });
    expect(new Set(keys).size).toBe(keys.length);
    // everything namespaced in fedns.yaml lives in the fedns namespace
    for (const d of DOCS.filter((x) => x.__file === 'fedns.yaml' && x.kind !== 'Namespace')) expect(d.metadata.namespace, `${d.kind} ${d.metadata.name}`).toBe('fedns');
    find('Namespace', 'fedns');
  });

  it('Deployment: at least 2 replicas, hard spread over nodes, selector = pod labels', () => {
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(matches(deployment.spec.selector.matchLabels, podLabels)).toBe(true);
    const spread = (pod.topologySpreadConstraints ?? []) as Obj[];
    const byNode = spread.find((c) => c.topologyKey === 'kubernetes.io/hostname');
    const anti = (pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []) as Obj[];
    const antiByNode = anti.find((t) => t.topologyKey === 'kubernetes.io/hostname');
    expect(byNode ?? antiByNode, 'topologySpreadConstraints or podAntiAffinity on kubernetes.io/hostname').toBeDefined();
    if (byNode) {
      expect(byNode.whenUnsatisfiable).toBe('DoNotSchedule');
      expect(byNode.maxSkew).toBe(1);
      expect(matches(byNode.labelSelector.matchLabels, podLabels)).toBe(true);
    }
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    expect(container.image).toBe('ghcr.io/fedns/fedns:0.1.0');
    expect(container.args).toEqual(['serve', '--config', '/etc/fedns/fedns.yaml']);
  });

  it('the embedded configuration passes the schema, and buildConfig on the pod\'s file layout', () => {
    const r = configSchema.safeParse(RAW);
    expect(r.success, r.success ? '' : JSON.stringify(r.error.issues)).toBe(true);
    // Rebuild /etc/fedns as the projected volume lays it out, then validate completely:
    // every clusters[].source.kubeconfig must be a file the Secret provides.
    const root = mkdtempSync(join(tmpdir(), 'fedns-deploy-'));
    try {
      for (const s of EMBEDDED.volume.projected.sources as Obj[]) {
        const src = s.configMap ?? s.secret;
        const obj = s.configMap ? find('ConfigMap', src.name) : find('Secret', src.name);
        const data: Record<string, string> = { ...(obj.stringData ?? {}) };
        for (const [k, v] of Object.entries((obj.data ?? {}) as Record<string, string>)) data[k] = s.secret ? Buffer.from(v, 'base64').toString('utf8') : v;
        for (const item of src.items as Obj[]) {
          expect(data[item.key], `${obj.kind} ${src.name} has key ${item.key}`).toBeDefined();
          const f = join(root, item.path);
          mkdirSync(dirname(f), { recursive: true });
          writeFileSync(f, data[item.key]);
        }
      }
      const file = join(root, posix.relative(EMBEDDED.mountPath, EMBEDDED.path));
      const raw = parse(readFileSync(file, 'utf8'));
      // The serial file's volume (mounted at its directory in the pod), laid out under root too.
      const serialDir = join(root, posix.dirname(raw.transfer.serialFile));
      mkdirSync(serialDir, { recursive: true });
      raw.transfer.serialFile = join(serialDir, posix.basename(raw.transfer.serialFile));
      const config = buildConfig(raw, file, root);
      expect(config.clusters.length).toBeGreaterThan(0);
      for (const c of config.clusters) expect(c.source.type, `cluster ${c.name}`).toBe('kube');
      expect(config.nameservers.every((n) => n.addresses.length > 0)).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('the Secret\'s placeholder kubeconfigs load and have the contexts the configuration names', async () => {
    const secret = find('Secret', 'fedns-kubeconfigs');
    const root = mkdtempSync(join(tmpdir(), 'fedns-deploy-kc-'));
    try {
      for (const c of PARSED.clusters) {
        if (c.source.type !== 'kube') continue;
        const key = posix.basename(c.source.kubeconfig!);
        const f = join(root, key);
        writeFileSync(f, secret.stringData[key]);
        const kc = await loadMemberKubeConfig(f, c.source.context);
        expect(kc.getCurrentContext()).toBe(c.source.context);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('listen: 0.0.0.0:1053, matching container ports 1053/UDP and 1053/TCP (the Service maps 53 to them)', () => {
    expect(PARSED.listen.length).toBeGreaterThan(0);
    for (const l of PARSED.listen) {
      expect(l.host).toBe('0.0.0.0'); // reachable through the pod IP
      expect(resolvePort(l.port, 'UDP')).toBe(l.port);
      expect(resolvePort(l.port, 'TCP')).toBe(l.port);
      expect(l.port).toBeGreaterThan(1023); // non-root without NET_BIND_SERVICE
    }
    const dnsPort = PARSED.listen[0].port;
    const svc = all('Service').find((s) => (s.spec.ports as Obj[]).some((p) => p.port === 53))!;
    expect(svc, 'a Service with port 53').toBeDefined();
    expect(matches(svc.spec.selector, podLabels)).toBe(true);
    const ports = svc.spec.ports as Obj[];
    expect(ports.map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).sort()).toEqual(['53/TCP', '53/UDP']);
    for (const p of ports) expect(resolvePort(p.targetPort, p.protocol ?? 'TCP'), `targetPort of ${p.name}`).toBe(dnsPort);
  });

  it('ops: probes hit /readyz and /healthz on the ops port; a separate metrics port 9153', () => {
    const ops = PARSED.ops.listen!;
    expect(ops).not.toBeNull();
    expect(ops.host).toBe('0.0.0.0'); // the kubelet probes the pod IP
    expect(ops.port).toBe(9153);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    for (const probe of [container.readinessProbe, container.livenessProbe]) expect(resolvePort(probe.httpGet.port)).toBe(ops.port);
    const metrics = all('Service').find((s) => (s.spec.ports as Obj[]).some((p) => p.port === 9153))!;
    expect(metrics).toBeDefined();
    expect(matches(metrics.spec.selector, podLabels)).toBe(true);
    const mp = (metrics.spec.ports as Obj[]).find((p) => p.port === 9153)!;
    expect(resolvePort(mp.targetPort)).toBe(ops.port);
    // metrics never share the public DNS load balancer
    expect((metrics.spec.type ?? 'ClusterIP')).toBe('ClusterIP');
    const dnsSvc = all('Service').find((s) => (s.spec.ports as Obj[]).some((p) => p.port === 53))!;
    expect((dnsSvc.spec.ports as Obj[]).some((p) => p.port === 9153)).toBe(false);
  });

  it('NetworkPolicy: DNS open to everyone, the ops port only to the monitoring namespace', () => {
    const policies = all('NetworkPolicy').filter((p) => p.metadata.namespace === deployment.metadata.namespace && matches(p.spec.podSelector.matchLabels, podLabels));
    expect(policies).toHaveLength(1);
    const np = policies[0];
    expect(np.apiVersion).toBe('networking.k8s.io/v1');
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    const rules = np.spec.ingress as Obj[];
    const portsOf = (r: Obj) => (r.ports as Obj[]).map((p) => `${resolvePort(p.port, p.protocol ?? 'TCP')}/${p.protocol ?? 'TCP'}`).sort();
    // Every rule names its ports: no rule opens the whole pod.
    for (const r of rules) expect(r.ports?.length, 'a rule without ports opens every port').toBeGreaterThan(0);
    const dnsPort = PARSED.listen[0].port;
    const opsPort = PARSED.ops.listen!.port;
    const dns = rules.filter((r) => portsOf(r).includes(`${dnsPort}/UDP`));
    expect(dns).toHaveLength(1);
    expect(portsOf(dns[0])).toEqual([`${dnsPort}/TCP`, `${dnsPort}/UDP`]);
    expect(dns[0].from, 'DNS from anywhere').toBeUndefined();
    const ops = rules.filter((r) => portsOf(r).includes(`${opsPort}/TCP`));
    expect(ops).toHaveLength(1);
    expect(portsOf(ops[0])).toEqual([`${opsPort}/TCP`]);
    expect(ops[0].from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    // The ports the policy opens are the container's, by number and protocol.
    const opened = rules.flatMap(portsOf).sort();
    expect(opened).toEqual(containerPorts.map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`).sort());
  });

  it('PodDisruptionBudget: minAvailable 1 and selects the Deployment\'s pods', () => {
    const pdbs = all('PodDisruptionBudget').filter((p) => matches(p.spec.selector.matchLabels, podLabels));
    expect(pdbs).toHaveLength(1);
    expect(pdbs[0].apiVersion).toBe('policy/v1');
    expect(pdbs[0].spec.minAvailable).toBe(1);
    expect(pdbs[0].spec.minAvailable).toBeLessThan(deployment.spec.replicas); // a node drain can proceed
  });

  it('pod security: non-root 65532, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp', () => {
    const sc = container.securityContext as Obj;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(sc.runAsNonRoot).toBe(true);
    expect(sc.runAsUser ?? pod.securityContext.runAsUser).toBe(65532);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.capabilities.drop).toEqual(['ALL']);
    expect(sc.capabilities.add).toBeUndefined();
    expect(sc.privileged).toBeUndefined();
    expect((sc.seccompProfile ?? pod.securityContext.seccompProfile).type).toBe('RuntimeDefault');
    expect(pod.hostNetwork).toBeUndefined();
    expect(container.resources.requests.cpu).toBeDefined();
    expect(container.resources.requests.memory).toBeDefined();
    expect(container.resources.limits.memory).toBeDefined();
    // every mount read-only except scratch space
    for (const m of container.volumeMounts as Obj[]) {
      const v = (pod.volumes as Obj[]).find((x) => x.name === m.name)!;
      if (!v.emptyDir) expect(m.readOnly, m.name).toBe(true);
    }
  });
});

describe('the transfer primary (one zone per serial)', () => {
  const sts = find('StatefulSet', 'fedns-transfer');
  const stsPod = sts.spec.template.spec as Obj;
  const stsLabels = sts.spec.template.metadata.labels as Record<string, string>;
  const stsContainer = (stsPod.containers as Obj[]).find((c) => c.name === 'fedns')!;

  it('one replica whose pod name is transfer.primary; the query replicas refuse transfers', () => {
    expect(sts.apiVersion).toBe('apps/v1');
    expect(sts.spec.replicas).toBe(1);
    expect(matches(sts.spec.selector.matchLabels, stsLabels)).toBe(true);
    // Pod name = host name = identity.server by default: the one replica that matches.
    expect(PARSED.transfer.primary).toBe(`${sts.metadata.name}-0`);
    expect(RAW.identity?.server).toBeUndefined();
    // The Deployment's pods (host names fedns-<hash>-<id>) can never be that name, and the two
    // controllers never select each other's pods.
    expect(matches(deployment.spec.selector.matchLabels, stsLabels)).toBe(false);
    expect(matches(sts.spec.selector.matchLabels, podLabels)).toBe(false);
    find('Service', sts.spec.serviceName);
  });

  it('runs the same fedns, configuration and lock-down as the query replicas', () => {
    for (const k of ['image', 'args', 'ports', 'readinessProbe', 'livenessProbe', 'resources', 'securityContext']) expect(stsContainer[k], k).toEqual(container[k]);
    expect(stsPod.securityContext).toEqual(pod.securityContext);
    expect(stsPod.automountServiceAccountToken).toBe(false);
    const volume = (p: Obj, name: string) => (p.volumes as Obj[]).find((v) => v.name === name);
    expect(volume(stsPod, EMBEDDED.volume.name)).toEqual(EMBEDDED.volume);
  });

  it('keeps transfer.serialFile on a volume that outlives the pod; the query replicas on scratch space', () => {
    const file = PARSED.transfer.serialFile!;
    expect(file).toBeDefined();
    const mountFor = (c: Obj) => (c.volumeMounts as Obj[]).find((m) => file.startsWith(`${m.mountPath}/`));
    const stsMount = mountFor(stsContainer)!;
    expect(stsMount, 'a mount above the serial file').toBeDefined();
    expect(stsMount.readOnly).toBeFalsy();
    const claim = (sts.spec.volumeClaimTemplates as Obj[]).find((t) => t.metadata.name === stsMount.name)!;
    expect(claim, `a volumeClaimTemplate named ${stsMount.name}`).toBeDefined();
    expect(claim.spec.accessModes).toEqual(['ReadWriteOnce']);
    const depMount = mountFor(container)!;
    expect(depMount, 'the query replicas can write the serial file too').toBeDefined();
    expect((pod.volumes as Obj[]).find((v) => v.name === depMount.name)?.emptyDir).toBeDefined();
  });

  it('the NetworkPolicy covers it as it covers the query replicas: DNS open, the ops port only to monitoring', () => {
    const policies = all('NetworkPolicy').filter((p) => p.metadata.namespace === sts.metadata.namespace && matches(p.spec.podSelector.matchLabels, stsLabels));
    expect(policies).toHaveLength(1);
    expect(matches(policies[0].spec.podSelector.matchLabels, podLabels)).toBe(true);
  });

  it('secondaries reach it, and only it, on port 53 UDP and TCP; metrics are scraped from it too', () => {
    const svc = find('Service', 'fedns-transfer');
    expect(matches(svc.spec.selector, stsLabels)).toBe(true);
    expect(matches(svc.spec.selector, podLabels)).toBe(false);
    const ports = svc.spec.ports as Obj[];
    expect(ports.map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).sort()).toEqual(['53/TCP', '53/UDP']);
    for (const p of ports) expect(p.targetPort).toBe(PARSED.listen[0].port);
    expect(svc.spec.externalTrafficPolicy).toBe('Local'); // transfer.allow sees the secondaries' addresses
    expect(PARSED.transfer.allow.length).toBeGreaterThan(0);
    const metrics = find('Service', 'fedns-metrics');
    expect(matches(metrics.spec.selector, stsLabels)).toBe(true);
    expect(matches(metrics.spec.selector, podLabels)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// RBAC checked against what fedns really asks for: the requests the fake API server sees while
// the kube source syncs a member (with the settings that read the most: the "exported"
// selection policy, no region in the configuration and clientNetworks: auto, so the nodes are
// listed and watched) and while
// `fedns join` / `fedns unjoin` run (dry run, join, join again, a conflict, unjoin). Every request
// must be granted by member.yaml, and every grant must be used by one of them.

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
/** One resource request: "verb group/resource" on an object (name) in a namespace. */
interface Access {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

function accessesOf(server: FakeApiServer): Access[] {
  return server.requestLog.map((q: RequestRecord) => {
    expect(q.kind, `${q.method} ${q.path}: a request for a resource (nothing else is granted)`).toBeDefined();
    const d = server.def(q.kind!);
    return { verb: q.verb, group: d.group, resource: d.plural, namespace: q.namespace, name: q.name };
  });
}

/** Each grant of the rules as "verb group/resource[/name]". */
function grantsOf(rules: Rule[]): string[] {
  return rules.flatMap((r) =>
    r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.flatMap((v) => (r.resourceNames ?? ['']).map((n) => `${v} ${g}/${res}${n ? `/${n}` : ''}`)))),
  );
}

/** The grants of `rules` that allow `a` (a list or watch cannot be limited to names). */
function grantsFor(rules: Rule[], a: Access): string[] {
  const base = `${a.verb} ${a.group}/${a.resource}`;
  return grantsOf(rules).filter((g) => g === base || (a.name !== undefined && g === `${base}/${a.name}`));
}

const show = (a: Access) => `${a.verb} ${a.group || 'core'}/${a.resource} ${a.namespace ?? ''}/${a.name ?? ''}`;

describe('member RBAC', () => {
  const { startFedns } = kubeHarness('fedns-deploy-rbac-');
  const eventually = eventuallyWith({ timeoutMs: 15_000, pollMs: 50 });
  const reader = find('ClusterRole', 'fedns-reader', 'member.yaml');
  const joinRole = find('Role', 'fedns-join', 'member.yaml');

  it('fedns-reader: bound to its ServiceAccount only; no wildcards, names or non-resource URLs', () => {
    const rules = reader.rules as Obj[];
    for (const r of rules) {
      expect(r.resourceNames).toBeUndefined();
      expect(r.nonResourceURLs).toBeUndefined();
    }
    expect(JSON.stringify(rules)).not.toContain('*');
    expect(reader.aggregationRule).toBeUndefined();
    const binding = find('ClusterRoleBinding', 'fedns-reader', 'member.yaml');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'fedns-reader' });
    const subjects = binding.subjects as Obj[];
    expect(subjects).toHaveLength(1);
    const sa = find('ServiceAccount', subjects[0].name, 'member.yaml');
    expect(subjects[0]).toEqual({ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace });
  });

  it('fedns-reader grants exactly what the kube source uses to sync a member', async () => {
    const server = await FakeApiServer.start();
    try {
      publish(server, 'shop', 'web', '192.0.2.1');
      server.apply(serviceExport('shop', 'web'));
      server.apply(node('n1', ['10.244.1.0/24'], ['10.0.0.1'], { 'topology.kubernetes.io/region': 'eu-west' }));
      server.apply({ apiVersion: 'multicluster.x-k8s.io/v1alpha1', kind: 'ServiceImport', metadata: { name: 'web', namespace: 'shop' }, spec: { ips: ['10.42.0.1'] } });
      server.apply({ apiVersion: 'about.k8s.io/v1alpha1', kind: 'ClusterProperty', metadata: { name: 'id.k8s.io' }, spec: { value: 'member-1' } });
      const f = await startFedns([{ name: 'member', server, clientNetworks: 'auto' }], { selection: { policy: 'exported' }, mcs: { enabled: true } });
      try {
        await eventually(() => f.answer('web.shop.fed.svc.eu-west.example.com.'), same(['192.0.2.1']), 'synced, and the region learned from the nodes');
        await eventually(() => f.answer('web.shop.svc.clusterset.local.'), same(['10.42.0.1']), 'the ClusterSetIP read from the ServiceImport');
        for (const kind of ['Service', 'EndpointSlice', 'ServiceExport', 'Node', 'ServiceImport', 'ClusterProperty']) await server.waitForWatches(kind, 1, 15_000);
        expect(f.fedns.federation.clusters.get('member')!.learnedNetworks).toEqual(['10.0.0.1/32', '10.244.1.0/24']);
      } finally {
        await f.stop();
      }
      const rules = reader.rules as Rule[];
      const used = new Set<string>();
      for (const a of accessesOf(server)) {
        const g = grantsFor(rules, a);
        expect(g, `${show(a)} is granted by ClusterRole fedns-reader`).not.toEqual([]);
        g.forEach((x) => used.add(x));
      }
      expect([...used].sort(), 'every grant is used').toEqual([...new Set(grantsOf(rules))].sort());
    } finally {
      await server.stop();
    }
  });

  it('fedns-join Role: in kube-system, not bound to the reader', () => {
    expect(joinRole.metadata.namespace).toBe('kube-system');
    expect(JSON.stringify(joinRole.rules)).not.toContain('*');
    const binding = find('RoleBinding', 'fedns-join', 'member.yaml');
    expect(binding.metadata.namespace).toBe('kube-system');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'fedns-join' });
    // the long-running reader never gets write access to the cluster DNS
    expect((binding.subjects as Obj[]).some((s) => s.name === 'fedns-reader')).toBe(false);
  });

  it('fedns-join grants exactly what fedns join/unjoin use', async () => {
    const server = await FakeApiServer.start();
    const scratch = demoCopy();
    try {
      server.apply({ kind: 'ConfigMap', metadata: { name: 'kube-dns', namespace: 'kube-system' }, data: {} });
      server.apply({ kind: 'ConfigMap', metadata: { name: 'coredns', namespace: 'kube-system' }, data: { Corefile: '.:53 {\n    forward . /etc/resolv.conf\n}\n' } });
      const kubeconfig = server.writeKubeconfig(join(scratch.dir, 'member.yaml'));
      server.resetRequestLog();
      const opts = { cluster: 'member', kubeconfig, nameserver: '192.0.2.53', config: scratch.config };
      await fednsJoin({ ...opts, dryRun: true });
      server.forceConflicts(1);
      await fednsJoin(opts);
      await fednsJoin(opts);
      await fednsUnjoin({ cluster: 'member', config: scratch.config, dryRun: true });
      await fednsUnjoin({ cluster: 'member', config: scratch.config });
      const rules = joinRole.rules as Rule[];
      const used = new Set<string>();
      for (const a of accessesOf(server)) {
        expect(a.namespace, show(a)).toBe(joinRole.metadata.namespace);
        const g = grantsFor(rules, a);
        expect(g, `${show(a)} is granted by Role fedns-join`).not.toEqual([]);
        g.forEach((x) => used.add(x));
      }
      expect([...used].sort(), 'every grant is used').toEqual([...new Set(grantsOf(rules))].sort());
    } finally {
      await server.stop();
      scratch.cleanup();
    }
  });
});

describe('monitoring.yaml (Prometheus Operator)', () => {
  it('scrapes the fedns-metrics Service by its port name', () => {
    const sm = find('ServiceMonitor', 'fedns', 'monitoring.yaml');
    const svc = find('Service', 'fedns-metrics', 'fedns.yaml');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>)) expect(svc.metadata.labels[k], k).toBe(v);
    expect(svc.spec.ports.map((p: Obj) => p.name)).toContain(sm.spec.endpoints[0].port);
  });

  it('alerts only on metrics a running fedns exports, with label values it uses', async () => {
    const demo = await startDemo();
    let text: string;
    try {
      text = await demo.server.metrics.text();
    } finally {
      await demo.stop();
    }
    // Every series name fedns exports (histograms also as _bucket/_sum/_count).
    const exported = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exported.add(m[1]);
      if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m[1] + s);
    }
    const allowed: Record<string, Record<string, readonly string[]>> = {
      fedns_cluster_health: { state: HEALTH_STATES },
      fedns_queries_total: { rcode: Object.keys(Rcode) },
      fedns_notifies_total: { result: NOTIFY_RESULTS },
      fedns_zone_transfers_total: { result: TRANSFER_RESULTS },
    };
    const rules = find('PrometheusRule', 'fedns', 'monitoring.yaml').spec.groups.flatMap((g: Obj) => g.rules) as Obj[];
    expect(rules.length).toBeGreaterThanOrEqual(8);
    for (const r of rules) {
      const expr = String(r.expr);
      const names = [...expr.matchAll(/\bfedns_[a-z0-9_]+/g)].map((m) => m[0]);
      expect(names.length, `${r.alert}: uses a fedns metric`).toBeGreaterThan(0);
      for (const n of names) expect(exported.has(n), `${r.alert}: ${n} is exported`).toBe(true);
      for (const sel of expr.matchAll(/\b(fedns_[a-z0-9_]+)\{([^}]*)\}/g)) {
        for (const m of sel[2].matchAll(/(\w+)\s*(=~|=)\s*"([^"]*)"/g)) {
          const values = allowed[sel[1]]?.[m[1]];
          expect(values, `${r.alert}: ${sel[1]} has a known label ${m[1]}`).toBeDefined();
          for (const v of m[2] === '=~' ? m[3].split('|') : [m[3]]) expect(values, `${r.alert}: ${sel[1]}{${m[1]}="${v}"}`).toContain(v);
        }
      }
      expect(r.labels?.severity, r.alert).toMatch(/^(warning|critical)$/);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
    }
  });
});
