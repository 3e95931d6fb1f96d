/**
 * The clusters[] edit of fedns's configuration file: only the joined cluster's lines change
 * (comments and the formatting of everything else are kept byte for byte), join is idempotent,
 * an existing entry is updated in place, unjoin after join gives back the original file, and the
 * result validates with buildConfig.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, readdirSync, symlinkSync, lstatSync, chownSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { writeFileAtomic } from '../../src/atomic-file.js';
import { addCluster, findCluster, kubeconfigRef, readConfigText, removeCluster, validateConfigText, type JoinEntry } from '../../src/join/config-file.js';
import { DEMO_CONFIG, ROOT } from '../support/demo.js';

const DEMO = readFileSync(DEMO_CONFIG, 'utf8');
let dir: string;
let file: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedns-join-cfg-'));
  file = join(dir, 'fedns.yaml');
  mkdirSync(join(dir, 'kubeconfigs'));
  writeFileSync(join(dir, 'kubeconfigs', 'delta.yaml'), 'apiVersion: v1\nkind: Config\n');
  // the demo's clusters read manifests from demo/<name>; buildConfig checks they exist
  for (const c of ['alpha', 'bravo', 'charlie']) mkdirSync(join(dir, 'demo', c), { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DELTA: JoinEntry = { name: 'delta', region: 'eu-west', zones: ['eu-west-b'], kubeconfig: 'kubeconfigs/delta.yaml', context: 'delta-ctx' };

describe('addCluster', () => {
  it('appends one item after the last cluster; every other byte of the file is kept', () => {
    const e = addCluster(DEMO, file, DELTA);
    expect(e.action).toBe('added');
    expect(e.after).toBe(
      DEMO +
        '  - name: delta\n    region: eu-west\n    zones: [ eu-west-b ]\n    source: { type: kube, kubeconfig: kubeconfigs/delta.yaml, context: delta-ctx }\n',
    );
    const cfg = validateConfigText(e.after, file);
    const delta = cfg.clusters.find((c) => c.name === 'delta')!;
    expect(delta.source).toMatchObject({ type: 'kube', kubeconfig: join(dir, 'kubeconfigs', 'delta.yaml'), context: 'delta-ctx' });
    expect(delta.zones).toEqual(['eu-west-b']);
    expect(cfg.clusters.map((c) => c.name)).toEqual(['alpha', 'bravo', 'charlie', 'delta']);
  });

  it('is idempotent: the same settings give the same text', () => {
    const once = addCluster(DEMO, file, DELTA).after;
    const twice = addCluster(once, file, DELTA);
    expect(twice.action).toBe('unchanged');
    expect(twice.after).toBe(once);
    // options not given leave what is there
    expect(addCluster(once, file, { ...DELTA, region: undefined, zones: undefined }).action).toBe('unchanged');
  });

  it('updates an existing entry in place, keeping its comments and other fields', () => {
    const text = `${DEMO}  # delta is our newest member
  - name: delta # joined by hand
    region: eu-west
    addressMode: endpoints
    source: {type: kube, kubeconfig: old.yaml}
# trailing comment
`;
    const e = addCluster(text, file, DELTA);
    expect(e.action).toBe('updated');
    expect(e.after).toBe(`${DEMO}  # delta is our newest member
  - name: delta # joined by hand
    region: eu-west
    addressMode: endpoints
    source: { type: kube, kubeconfig: kubeconfigs/delta.yaml, context: delta-ctx }
    zones: [ eu-west-b ]
# trailing comment
`);
    expect(validateConfigText(e.after, file).clusters.find((c) => c.name === 'delta')?.addressMode).toBe('endpoints');
    // a files-backed entry of that name becomes a kube one
    const files = addCluster(DEMO, file, { ...DELTA, name: 'charlie', region: undefined, zones: undefined });
    expect(files.action).toBe('updated');
    expect(findCluster(files.after, file, 'charlie')).toEqual({
      name: 'charlie',
      region: 'eu-west',
      zones: ['eu-west-a'],
      source: { type: 'kube', kubeconfig: 'kubeconfigs/delta.yaml', context: 'delta-ctx' },
      clientNetworks: ['127.0.0.4/32'],
    });
    expect(files.after.replace(/^ {4}source: .*charlie.*$|^ {4}source: \{ type: kube.*$/gm, '')).toBe(DEMO.replace(/^ {4}source: .*charlie.*$/m, ''));
  });

  it('a changed region is replaced where it is; --zones "" removes the zones line', () => {
    const joined = addCluster(DEMO, file, DELTA).after;
    const moved = addCluster(joined, file, { ...DELTA, region: 'us-east', zones: [] });
    expect(moved.action).toBe('updated');
    expect(moved.after).toBe(DEMO + '  - name: delta\n    region: us-east\n    source: { type: kube, kubeconfig: kubeconfigs/delta.yaml, context: delta-ctx }\n');
    validateConfigText(moved.after, file);
  });

  it('unjoin after join gives back the original file exactly', () => {
    const joined = addCluster(DEMO, file, DELTA).after;
    const r = removeCluster(joined, file, 'delta');
    expect(r.action).toBe('removed');
    expect(r.after).toBe(DEMO);
    expect(removeCluster(DEMO, file, 'delta')).toEqual({ before: DEMO, after: DEMO, action: 'absent' });
  });

  it('works on "clusters: []", on a file without clusters, keeps CRLF', () => {
    const empty = 'domain: example.com.\nlisten: [127.0.0.1:1053]\nclusters: []  # none yet\nlog: { level: info }\n';
    const e = addCluster(empty, file, DELTA);
    expect(e.after).toBe(
      'domain: example.com.\nlisten: [127.0.0.1:1053]\nclusters:\n  - name: delta\n    region: eu-west\n    zones: [ eu-west-b ]\n    source: { type: kube, kubeconfig: kubeconfigs/delta.yaml, context: delta-ctx }  # none yet\nlog: { level: info }\n',
    );
    validateConfigText(e.after, file);
    const back = removeCluster(e.after, file, 'delta').after;
    expect(parse(back)).toEqual(parse(empty));
    validateConfigText(back, file); // "clusters: []", not a null that would not validate

    const none = '# minimal\ndomain: example.com.\nlisten: [127.0.0.1:1053]\n';
    const n = addCluster(none, file, { ...DELTA, zones: [], region: undefined });
    expect(n.after).toBe(`${none}clusters:\n  - name: delta\n    source: { type: kube, kubeconfig: kubeconfigs/delta.yaml, context: delta-ctx }\n`);
    validateConfigText(n.after, file);

    const crlf = DEMO.replace(/\n/g, '\r\n');
    const c = addCluster(crlf, file, DELTA).after;
    expect(c.startsWith(crlf)).toBe(true);
    expect(c.replace(/\r\n/g, '')).not.toContain('\n');
    expect(removeCluster(c, file, 'delta').after).toBe(crlf);
  });

  it('the result is validated: zones without a region, a missing kubeconfig', () => {
    const bad = addCluster(DEMO, file, { ...DELTA, region: undefined }).after;
    expect(() => validateConfigText(bad, file)).toThrow(/clusters\[3\]\.region: a cluster with zones needs a region/);
    const missing = addCluster(DEMO, file, { ...DELTA, kubeconfig: 'nope.yaml' }).after;
    expect(() => validateConfigText(missing, file)).toThrow(/clusters\[3\]\.source\.kubeconfig: file .*nope\.yaml not found/);
  });
});

describe('a configuration of aliases that expand without bound ("billion laughs")', () => {
  it('is a problem of the file, named, for every edit and read', () => {
    const lol = ['lol0: &l0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) lol.push(`lol${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(', ')}]`);
    const text = `${lol.join('\n')}\nclusters: []\n`;
    const named = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: YAML: .*alias`);
    expect(() => addCluster(text, file, DELTA)).toThrow(named);
    expect(() => removeCluster(text, file, 'delta')).toThrow(named);
    expect(() => findCluster(text, file, 'delta')).toThrow(named);
    expect(() => validateConfigText(text, file)).toThrow(named);
  });
});

describe('reading the configuration file', () => {
  it('reads only a regular file: a FIFO, which a read would wait on for ever, is refused by name', () => {
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    expect(() => readConfigText(fifo)).toThrow(/fifo\.yaml: cannot read the file \(not a regular file \(a FIFO\)\); give the configuration with --config FILE/);
    expect(readConfigText(DEMO_CONFIG)).toBe(DEMO);
  });
});

describe('kubeconfigRef', () => {
  it('relative to the configuration inside its directory tree, absolute outside', () => {
    expect(kubeconfigRef('/etc/fedns/fedns.yaml', '/etc/fedns/kubeconfigs/a')).toBe('kubeconfigs/a');
    expect(kubeconfigRef('fedns.yaml', 'kubeconfigs/a', '/etc/fedns')).toBe('kubeconfigs/a');
    expect(kubeconfigRef('/etc/fedns/fedns.yaml', '/home/me/.kube/config')).toBe('/home/me/.kube/config');
    expect(kubeconfigRef('config/fedns.yaml', '../k', ROOT)).toBe(join(ROOT, '..', 'k'));
  });
});

describe('writeFileAtomic', () => {
  it('replaces the file, keeps its mode, leaves no temp file', () => {
    const f = join(dir, 'atomic.yaml');
    writeFileSync(f, 'old\n');
    chmodSync(f, 0o600);
    const before = readdirSync(dir).sort();
    writeFileAtomic(f, 'new\n');
    expect(readFileSync(f, 'utf8')).toBe('new\n');
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  // (only root can give a file to another owner)
  it.skipIf(process.getuid?.() !== 0)('keeps the owner of a file written by root (a configuration owned by its operator)', () => {
    const f = join(dir, 'owned.yaml');
    writeFileSync(f, 'old\n');
    chownSync(f, 4321, 4321);
    writeFileAtomic(f, 'new\n');
    expect(readFileSync(f, 'utf8')).toBe('new\n');
    expect([statSync(f).uid, statSync(f).gid]).toEqual([4321, 4321]);
  });

  it('through a symlink: the file it points to is replaced, the link stays a link', () => {
    const target = join(dir, 'real.yaml');
    const link = join(dir, 'link.yaml');
    writeFileSync(target, 'old\n');
    symlinkSync(target, link);
    writeFileAtomic(link, 'new\n');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('new\n');
  });

  it('a failed rename leaves the target as it was and no temp file behind', () => {
    const sub = join(dir, 'failing');
    mkdirSync(join(sub, 'target'), { recursive: true });
    writeFileSync(join(sub, 'target', 'keep'), 'x');
    expect(() => writeFileAtomic(join(sub, 'target'), 'new\n')).toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(readdirSync(sub)).toEqual(['target']);
    expect(readdirSync(join(sub, 'target'))).toEqual(['keep']);
  });
});
