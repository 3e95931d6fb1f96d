// Reading a cluster's manifest directory: JSON and YAML, Lists and multi-document files, and only
// the files that changed parsed again.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, renameSync, mkdirSync, symlinkSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileClusterSource, ManifestReader, MAX_MANIFEST } from '../../src/cluster/files.js';
import { Federation } from '../../src/federation/federation.js';
import { createLogger } from '../../src/ops/log.js';
import { testFederationSettings } from '../support/federation.js';
import { PageReader } from '../../src/cluster/page-reader.js';
import { eventually } from '../support/kube-harness.js';
import { ApiError } from '../../src/cluster/supervisor.js';
import { captureLogs } from '../transfer/harness.js';

const svc = (name: string, ip: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop' },
  spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  status: { loadBalancer: { ingress: [{ ip }] } },
});

/** `s` as a regular expression that matches it literally. */
const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('ManifestReader', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedns-manifests-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads JSON Lists, multi-document YAML and subdirectories; an empty file is no objects', () => {
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [svc('a', '192.0.2.1'), svc('b', '192.0.2.2')] }));
    mkdirSync(join(dir, 'more'));
    writeFileSync(join(dir, 'more', 'c.yaml'), `apiVersion: v1\nkind: Service\nmetadata: { name: c, namespace: shop }\n---\napiVersion: v1\nkind: ServiceList\nitems:\n  - metadata: { name: d, namespace: shop }\n`);
    writeFileSync(join(dir, 'empty.json'), '\n');
    const inv = new ManifestReader().read(dir);
    expect(inv.services.map((s) => s.name).sort()).toEqual(['a', 'b', 'c', 'd']);
  });

  it('reads a mounted ConfigMap once, through the names it shows: its hidden data directory is skipped', () => {
    // The kubelet's layout: the files in a hidden, timestamped directory, "..data" linking to it,
    // and each shown name linking through "..data".
    mkdirSync(join(dir, '..2026_12_01_00_00_00.000000001'));
    writeFileSync(join(dir, '..2026_12_01_00_00_00.000000001', 'web.yaml'), `apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: shop }\n`);
    writeFileSync(join(dir, '..2026_12_01_00_00_00.000000001', 'bad.yaml'), 'kind: [unclosed\n');
    symlinkSync('..2026_12_01_00_00_00.000000001', join(dir, '..data'));
    symlinkSync(join('..data', 'web.yaml'), join(dir, 'web.yaml'));
    symlinkSync(join('..data', 'bad.yaml'), join(dir, 'bad.yaml'));
    // The error names the file as shown, not its copy in the data directory.
    expect(() => new ManifestReader().read(dir)).toThrow(new RegExp(`^${join(dir, 'bad.yaml').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: YAML`));
    rmSync(join(dir, 'bad.yaml'));
    const inv = new ManifestReader().read(dir);
    expect(inv.services.map((x) => x.name)).toEqual(['web']);
  });

  it('parses again only the files that changed (others keep their objects); a rename over a file counts', () => {
    writeFileSync(join(dir, 'base.json'), JSON.stringify(svc('base', '192.0.2.1')));
    writeFileSync(join(dir, 'bench.json'), JSON.stringify(svc('bench', '192.0.2.2')));
    const reader = new ManifestReader();
    const first = reader.read(dir);
    const byName = (inv: typeof first, n: string) => inv.services.find((s) => s.name === n)!;
    writeFileSync(join(dir, 'bench.json.tmp'), JSON.stringify(svc('bench', '192.0.2.3')));
    renameSync(join(dir, 'bench.json.tmp'), join(dir, 'bench.json'));
    const second = reader.read(dir);
    expect(byName(second, 'base')).toBe(byName(first, 'base')); // not parsed again
    expect(byName(second, 'bench')).not.toBe(byName(first, 'bench'));
    expect(byName(second, 'bench').lbAddresses).toEqual(['192.0.2.3']);
  });

  it('a broken file fails the read with its name, and the reader recovers once it is fixed', () => {
    writeFileSync(join(dir, 'good.yaml'), `apiVersion: v1\nkind: Service\nmetadata: { name: good, namespace: shop }\n`);
    writeFileSync(join(dir, 'bad.json'), '{"kind": "Service",');
    const reader = new ManifestReader();
    expect(() => reader.read(dir)).toThrow(new RegExp(`^${join(dir, 'bad.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: JSON: `));
    writeFileSync(join(dir, 'bad.yaml'), 'kind: [unclosed\n');
    rmSync(join(dir, 'bad.json'));
    expect(() => reader.read(dir)).toThrow(/bad\.yaml: YAML: /);
    rmSync(join(dir, 'bad.yaml'));
    expect(reader.read(dir).services.map((s) => s.name)).toEqual(['good']);
  });

  // These failed the read with a bare "Excessive alias count ..." or "EISDIR: ...", naming no file.
  it('a file of aliases that expand without bound, or a manifest name that links to a directory, fails the read with its name', () => {
    const named = (f: string, what: string) => new RegExp(`^${join(dir, f).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: ${what}`);
    const lol = ['lol0: &l0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) lol.push(`lol${i}: &l${i} [${Array(10).fill(`*l${i - 1}`).join(', ')}]`);
    writeFileSync(join(dir, 'lol.yaml'), `${lol.join('\n')}\nkind: Service\n`);
    const reader = new ManifestReader();
    expect(() => reader.read(dir)).toThrow(named('lol.yaml', 'YAML: .*alias'));
    rmSync(join(dir, 'lol.yaml'));
    mkdirSync(join(dir, 'elsewhere'));
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'x.yaml'));
    expect(() => reader.read(dir)).toThrow(named('x.yaml', 'not a regular file \\(a directory\\)'));
    rmSync(join(dir, 'x.yaml'));
    expect(reader.read(dir).services).toEqual([]);
  });

  it('skips an object it cannot read, naming its file, and keeps the rest of the file', () => {
    const bad = { ...svc('Bad_Name', '192.0.2.9') };
    writeFileSync(join(dir, 'mixed.yaml'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [bad, svc('ok2', '192.0.2.77'), { kind: 'Service', metadata: { name: 'p', namespace: '__proto__' } }] }));
    const inv = new ManifestReader().read(dir);
    expect(inv.services.map((s) => s.name)).toEqual(['ok2']);
    expect(inv.unreadable).toHaveLength(2);
    expect(inv.unreadable[0].kind).toBe('Service');
    expect(inv.unreadable[0].what).toContain(join(dir, 'mixed.yaml'));
    expect(inv.unreadable[0].what).toMatch(/Bad_Name/);
    expect(inv.unreadable[1].what).toMatch(/__proto__/);
  });
});

// Reading a FIFO waits for a writer and /dev/zero never ends: either stopped the whole server (the
// reads are synchronous, on the thread that answers queries). Only regular files are read.
describe('ManifestReader: what is not a manifest file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedns-manifests-'));
    writeFileSync(join(dir, 'good.yaml'), `apiVersion: v1\nkind: Service\nmetadata: { name: good, namespace: shop }\n`);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a FIFO named like a manifest, naming it, and reads again once it is gone', () => {
    execFileSync('mkfifo', [join(dir, 'pipe.yaml')]);
    const reader = new ManifestReader();
    expect(() => reader.read(dir)).toThrow(new RegExp(`^${escaped(join(dir, 'pipe.yaml'))}: not a regular file \\(a FIFO\\); fedns reads only regular files`));
    rmSync(join(dir, 'pipe.yaml'));
    expect(reader.read(dir).services.map((s) => s.name)).toEqual(['good']);
  });

  it('refuses a symlink to a device; follows a symlink to a regular file (a mounted ConfigMap)', () => {
    symlinkSync('/dev/zero', join(dir, 'zero.json'));
    expect(() => new ManifestReader().read(dir)).toThrow(new RegExp(`^${escaped(join(dir, 'zero.json'))}: not a regular file \\(a character device\\)`));
    rmSync(join(dir, 'zero.json'));
    mkdirSync(join(dir, '..data'));
    writeFileSync(join(dir, '..data', 'linked.txt'), `apiVersion: v1\nkind: Service\nmetadata: { name: linked, namespace: shop }\n`);
    symlinkSync(join('..data', 'linked.txt'), join(dir, 'linked.yaml'));
    expect(new ManifestReader().read(dir).services.map((s) => s.name).sort()).toEqual(['good', 'linked']);
  });

  it('names a dangling symlink', () => {
    symlinkSync(join(dir, 'gone.yaml'), join(dir, 'dangling.yaml'));
    expect(() => new ManifestReader().read(dir)).toThrow(new RegExp(`^${escaped(join(dir, 'dangling.yaml'))}: cannot read it \\(ENOENT\\)$`));
  });

  it(`refuses a file larger than ${MAX_MANIFEST} bytes without reading it`, () => {
    const fd = openSync(join(dir, 'huge.yaml'), 'w');
    ftruncateSync(fd, MAX_MANIFEST + 1); // sparse: no disk used
    closeSync(fd);
    expect(() => new ManifestReader().read(dir)).toThrow(
      new RegExp(`^${escaped(join(dir, 'huge.yaml'))}: ${MAX_MANIFEST + 1} bytes, more than the ${MAX_MANIFEST} a manifest may have; split it into several files$`),
    );
  });
});

describe('FileClusterSource watching', () => {
  it('follows files replaced by rename, new subdirectories and files in them, and deletions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedns-watch-'));
    const fed = new Federation(testFederationSettings());
    const state = fed.addCluster({ name: 'one', region: 'r1', zones: [], addressMode: 'loadBalancer', gracePeriod: 300 });
    writeFileSync(join(dir, 'a.json'), JSON.stringify(svc('a', '192.0.2.1')));
    const source = new FileClusterSource(state, dir, createLogger('silent'), { pollMs: 60_000 }); // no poll: watchers only
    const names = () => [...state.services.values()].map((x) => `${x.name}=${x.lbAddresses.join(',')}`).sort();
    const until = async (want: string[]) => {
      const end = Date.now() + 5000;
      while (JSON.stringify(names()) !== JSON.stringify(want)) {
        if (Date.now() > end) throw new Error(`have ${JSON.stringify(names())}, want ${JSON.stringify(want)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    try {
      source.start();
      expect(names()).toEqual(['a=192.0.2.1']);
      for (let i = 2; i < 5; i++) {
        writeFileSync(join(dir, 'a.json.tmp'), JSON.stringify(svc('a', `192.0.2.${i}`)));
        renameSync(join(dir, 'a.json.tmp'), join(dir, 'a.json'));
        await until([`a=192.0.2.${i}`]);
      }
      // A new directory and a file in it at once: the file lands before the directory's watcher
      // exists, and is still read.
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'sub', 'b.json'), JSON.stringify(svc('b', '198.51.100.1')));
      await until(['a=192.0.2.4', 'b=198.51.100.1']);
      // And the new directory is watched from then on.
      writeFileSync(join(dir, 'sub', 'b.json'), JSON.stringify(svc('b', '198.51.100.2')));
      await until(['a=192.0.2.4', 'b=198.51.100.2']);
      rmSync(join(dir, 'a.json'));
      await until(['b=198.51.100.2']);
    } finally {
      source.stop();
      fed.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('FileClusterSource with big files', () => {
  it('parses a big YAML file on the worker thread, the event loop free meanwhile; one that does not parse is reported as on the main thread', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedns-big-'));
    const pages = new PageReader();
    const fed = new Federation(testFederationSettings());
    const state = fed.addCluster({ name: 'one', region: 'r1', zones: [], addressMode: 'loadBalancer', gracePeriod: 300 });
    writeFileSync(join(dir, 'a.json'), JSON.stringify(svc('a', '192.0.2.1')));
    const source = new FileClusterSource(state, dir, createLogger('silent'), { pollMs: 100, pageReader: pages });
    // 6,000 Services as kubectl prints them: 1.5 MB of YAML, a second or more to parse.
    const big = (n: number, last: string) =>
      [...Array.from({ length: n - 1 }, (_, i) => `svc${i}`), last]
        .map((name, i) => `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: shop\n  labels:\n    app: ${name}\n    tier: web\nspec:\n  type: LoadBalancer\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 10.${i >> 8}.${i & 255}.1\n`)
        .join('---\n');
    // The longest the event loop went without running a 1 ms timer.
    let longest = 0;
    let last = performance.now();
    const lag = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
    }, 1);
    try {
      source.start();
      expect(state.health).toBe('live');
      const text = big(6000, 'final');
      expect(text.length).toBeGreaterThan(1_400_000);
      writeFileSync(join(dir, 'big.yaml'), text);
      await eventually(() => state.services.has('shop/final'), (v) => v, 'the big file read', 60_000, 10);
      expect(state.services.size).toBe(6001);
      expect(pages.pagesOnWorker).toBe(1);
      // Parsed here, it held the event loop 1-3 s; on the worker, the longest wait is a slice's,
      // and the collections of the copy the worker hands over.
      expect(longest).toBeLessThan(400);
      // Broken: the cluster keeps its data, stale, and says which file and why, as for a small file.
      writeFileSync(join(dir, 'big.yaml'), `${text}---\nkind: [unclosed\n`);
      await eventually(() => state.health, (h) => h === 'stale', 'the broken big file reported', 60_000, 10);
      expect(state.reason).toMatch(new RegExp(`^${escaped(join(dir, 'big.yaml'))}: YAML: `));
      expect(state.services.has('shop/final')).toBe(true);
      expect(pages.pagesOnWorker).toBe(1);
    } finally {
      clearInterval(lag);
      source.stop();
      pages.close();
      fed.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

/** `n` Services as kubectl prints them in YAML (6,000: 1.5 MB, a second or more to parse), the last named `last`. */
const kubectlYaml = (n: number, last: string) =>
  [...Array.from({ length: n - 1 }, (_, i) => `svc${i}`), last]
    .map((name, i) => `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: shop\nspec:\n  type: LoadBalancer\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 10.${i >> 8}.${i & 255}.1\n`)
    .join('---\n');

describe('FileClusterSource with big files: what happens during a read', () => {
  let dir: string;
  let fed: Federation;
  let state: ReturnType<Federation['addCluster']>;
  const closing: Array<() => void> = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedns-big-'));
    fed = new Federation(testFederationSettings());
    state = fed.addCluster({ name: 'one', region: 'r1', zones: [], addressMode: 'loadBalancer', gracePeriod: 300 });
  });
  afterEach(() => {
    for (const c of closing.splice(0)) c();
    fed.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const source = (pages: PageReader, at = dir) => {
    const s = new FileClusterSource(state, at, createLogger('silent'), { pollMs: 100, pageReader: pages });
    closing.push(() => s.stop());
    return s;
  };
  const reader = (options: ConstructorParameters<typeof PageReader>[0] = {}) => {
    const pages = new PageReader(options);
    closing.push(() => pages.close());
    return pages;
  };

  it('a source stopped while it applies a big file applies no more of it: the source that replaced it (a reload) keeps what it read', async () => {
    const other = mkdtempSync(join(tmpdir(), 'fedns-other-'));
    closing.push(() => rmSync(other, { recursive: true, force: true }));
    // 20,000 Services: parsed on the worker in a moment, applied over many slices.
    writeFileSync(join(dir, 'big.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: Array.from({ length: 20_000 }, (_, i) => svc(`s${i}`, `10.${(i >> 8) & 255}.${i & 255}.1`)) }));
    writeFileSync(join(other, 'small.json'), JSON.stringify(svc('other', '192.0.2.9')));
    const pages = reader();
    const first = source(pages);
    const second = source(pages, other);
    first.start();
    await eventually(() => state.services.size, (n) => n > 0, 'the big file being applied', 60_000, 0);
    expect(state.services.size).toBeLessThan(20_000);
    // As src/app.ts replaces a source whose settings changed: the old one stops, the new one starts.
    first.stop();
    second.start();
    expect([...state.services.keys()]).toEqual(['shop/other']);
    await new Promise((r) => setTimeout(r, 500));
    expect([...state.services.keys()]).toEqual(['shop/other']);
    expect(state.health).toBe('live');
  }, 60_000);

  it('a worker that dies while it parses a big file: the cluster reads it again and becomes live', async () => {
    writeFileSync(join(dir, 'a.json'), JSON.stringify(svc('a', '192.0.2.1')));
    let loaded: Promise<unknown> | undefined;
    const pages = new (class extends PageReader {
      override readManifest(file: string, text: string) {
        const read = super.readManifest(file, text);
        const worker = (this as unknown as { worker: Worker }).worker;
        loaded = new Promise<void>((ready) => worker.on('message', (m: { ready?: true }) => m.ready && ready()));
        return read;
      }
    })();
    closing.push(() => pages.close());
    source(pages).start();
    expect(state.health).toBe('live');
    // Three seconds or more to parse.
    writeFileSync(join(dir, 'big.yaml'), kubectlYaml(12_000, 'final'));
    await eventually(() => loaded !== undefined, (v) => v, 'the big file on the worker', 10_000, 1);
    await loaded;
    // The poll has seen the change by now.
    await new Promise((r) => setTimeout(r, 400));
    // As a worker out of memory, or one that crashed.
    void (pages as unknown as { worker: Worker }).worker.terminate();
    await eventually(() => state.reason, (r) => r.includes('the list page worker stopped'), 'the failure reported', 10_000, 5);
    expect(state.health).toBe('stale');
    await eventually(() => state.health, (h) => h === 'live', 'the file read again', 30_000, 20);
    expect(state.services.size).toBe(12_001);
  }, 60_000);

  it('a retry that waits after the worker failed is dropped once a read succeeds: no read follows for nothing', async () => {
    writeFileSync(join(dir, 'a.json'), JSON.stringify(svc('a', '192.0.2.1')));
    const logs = captureLogs('info');
    // A worker that fails its first file, as one that died would.
    let failures = 0;
    const pages = new (class extends PageReader {
      override readManifest(file: string, text: string) {
        if (failures++ === 0) return Promise.reject(new ApiError(`${file}: the list page worker stopped (exit code 1)`, 'protocol'));
        return super.readManifest(file, text);
      }
    })();
    closing.push(() => pages.close());
    const s = new FileClusterSource(state, dir, logs.log, { pollMs: 100, pageReader: pages });
    closing.push(() => s.stop());
    s.start();
    writeFileSync(join(dir, 'big.yaml'), kubectlYaml(1000, 'final'));
    await eventually(() => state.health, (h) => h === 'stale', 'the failure reported', 10_000, 5);
    // The big file goes before the retry's time (1 s): the directory reads at once, and well.
    rmSync(join(dir, 'big.yaml'));
    await eventually(() => state.health, (h) => h === 'live', 'the directory read again', 10_000, 5);
    const reads = () => logs.find('cluster manifests changed').length;
    const after = reads();
    await new Promise((r) => setTimeout(r, 1500));
    expect(reads()).toBe(after);
    expect(failures).toBe(1);
  }, 60_000);

  it('a big file that takes the worker longer than stuckMs to parse is read all the same, as are the list pages behind it', async () => {
    const pages = reader({ stuckMs: 300 });
    // A second or more to parse.
    const text = kubectlYaml(6000, 'final');
    const page = Buffer.from(JSON.stringify({ apiVersion: 'v1', kind: 'ServiceList', metadata: { resourceVersion: '7' }, items: Array.from({ length: 500 }, (_, i) => svc(`p${i}`, '192.0.2.1')) }));
    expect(page.length).toBeGreaterThan(pages.minWorkerBytes);
    const [inv, read] = await Promise.all([pages.readManifest(join(dir, 'big.yaml'), text), pages.read('Service', page, 'list services')]);
    expect(inv.services.length).toBe(6000);
    expect(read.items.length).toBe(500);
  }, 60_000);

  it('Lists nested without bound fail the read with the file named, the same on the worker as on the main thread', async () => {
    const file = join(dir, 'deep.json');
    const text = '{"kind":"List","items":['.repeat(20_000) + ']}'.repeat(20_000);
    writeFileSync(file, text);
    let message = '';
    try {
      new ManifestReader().read(dir);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(new RegExp(`^${escaped(file)}: `));
    await expect(reader().readManifest(file, text)).rejects.toMatchObject({ message });
  }, 60_000);

  it('a file deleted while a big file is parsed is no error: the cluster stays live and reads the directory again', async () => {
    writeFileSync(join(dir, 'a.yaml'), kubectlYaml(6000, 'first'));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(svc('b', '192.0.2.2')));
    const asked: string[] = [];
    const pages = new (class extends PageReader {
      override readManifest(file: string, text: string) {
        asked.push(file);
        return super.readManifest(file, text);
      }
    })();
    closing.push(() => pages.close());
    source(pages).start();
    await eventually(() => state.health, (h) => h === 'live', 'the first read', 60_000, 20);
    const healths = new Set<string>();
    const watching = setInterval(() => healths.add(state.health), 2);
    closing.push(() => clearInterval(watching));
    asked.length = 0;
    writeFileSync(join(dir, 'a.yaml'), kubectlYaml(6000, 'second'));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(svc('b', '192.0.2.3')));
    await eventually(() => asked.includes(join(dir, 'a.yaml')), (v) => v, 'a.yaml on the worker', 10_000, 1);
    rmSync(join(dir, 'b.json'));
    await eventually(() => state.services.has('shop/second') && !state.services.has('shop/b'), (v) => v, 'the change read', 60_000, 20);
    expect([...healths]).toEqual(['live']);
    expect(state.reason).toBe('');
  }, 60_000);
});

describe('FileClusterSource health', () => {
  it('a directory that cannot be read makes the cluster stale (its last data kept), and live again once it reads', () => {
    const root = mkdtempSync(join(tmpdir(), 'fedns-manifests-'));
    const dir = join(root, 'alpha');
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'a.json'), JSON.stringify(svc('a', '192.0.2.1')));
      const fed = new Federation(testFederationSettings());
      const state = fed.addCluster({ name: 'alpha', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
      const source = new FileClusterSource(state, dir, createLogger('silent'));
      source.reload();
      expect(state.health).toBe('live');
      renameSync(dir, join(root, 'gone'));
      source.reload();
      expect(state.health).toBe('stale');
      expect(state.reason).toMatch(/ENOENT/);
      expect(state.services.has('shop/a')).toBe(true);
      renameSync(join(root, 'gone'), dir);
      source.reload();
      expect(state.health).toBe('live');
      state.dispose();
      fed.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("an object it cannot read is skipped: the cluster stays live with the file's other objects", () => {
    const root = mkdtempSync(join(tmpdir(), 'fedns-manifests-'));
    try {
      writeFileSync(join(root, 'a.json'), JSON.stringify(svc('a', '192.0.2.1')));
      const fed = new Federation(testFederationSettings());
      const state = fed.addCluster({ name: 'alpha', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
      const source = new FileClusterSource(state, root, createLogger('silent'));
      source.reload();
      writeFileSync(join(root, 'b.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [svc('Bad_Name', '192.0.2.9'), svc('ok2', '192.0.2.77')] }));
      source.reload();
      expect(state.health).toBe('live');
      expect([...state.services.keys()].sort()).toEqual(['shop/a', 'shop/ok2']);
      // Counted (and logged) when it first appears, not again on every read of the directory.
      expect(fed.ignored.count('unreadable object')).toBe(1);
      writeFileSync(join(root, 'c.json'), JSON.stringify(svc('c', '192.0.2.3')));
      source.reload();
      expect(fed.ignored.count('unreadable object')).toBe(1);
      state.dispose();
      fed.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
