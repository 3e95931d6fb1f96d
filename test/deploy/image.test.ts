/**
 * The container image, without a container engine: the Dockerfile's final stage is the directory
 * scripts/stage-runtime.sh produces, so this test runs that script into a scratch directory and
 * serves the embedded demo from there, as the image's user (65532) when the tests run as root,
 * from files that user cannot write (the pod's read-only root file system).
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { dig } from '../support/dig.js';
import { ROOT } from '../support/demo.js';
import { startFedns, testListen } from '../support/fedns.js';
import { hasUdpAddon } from '../support/udp-paths.js';

const IMAGE_USER = 65532;
/** Flags the image starts node with: V8's young generation at Node.js 20's size (Dockerfile). */
const IMAGE_NODE_FLAGS = ['--max-semi-space-size=16'];
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Dockerfile instructions per stage: [instruction, arguments] with continuation lines joined. */
function dockerfileStages(): [string, string][][] {
  const lines = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: [string, string][][] = [];
  for (const l of lines) {
    const m = /^(\S+)\s+(.*)$/.exec(l)!;
    const ins: [string, string] = [m[1].toUpperCase(), m[2]];
    if (ins[0] === 'FROM') stages.push([]);
    stages[stages.length - 1].push(ins);
  }
  return stages;
}

let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedns-image-'));
  chmodSync(dir, 0o755); // the image's user must reach it
  await new Promise<void>((resolve, reject) =>
    execFile('sh', ['scripts/stage-runtime.sh', dir], { cwd: ROOT, timeout: 180_000 }, (e, _out, err) => (e ? reject(new Error(`stage-runtime.sh failed: ${err}`)) : resolve())),
  );
}, 200_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Dockerfile', () => {
  const stages = dockerfileStages();
  const final = stages[stages.length - 1];

  it('builds on Node.js 24 and stages the runtime with scripts/stage-runtime.sh', () => {
    expect(stages.length).toBe(2);
    for (const s of stages) expect(s[0][1]).toMatch(/^node:24[-.\w]*(\s+AS\s+\w+)?$/i);
    const build = stages[0];
    expect(build.some(([i, a]) => i === 'RUN' && /\bscripts\/stage-runtime\.sh \/app\b/.test(a))).toBe(true);
    // Every path the build needs is copied in: what tsconfig.json compiles and what the script reads.
    const copied = build.filter(([i]) => i === 'COPY').map(([, a]) => a.split(/\s+/)[0]);
    for (const p of ['package.json', 'tsconfig.json', 'src', 'test/support', 'benchmarks', 'config', 'scripts', 'native']) expect(copied).toContain(p);
    // The batched UDP addon: toolchain in this stage only, and the image always has the addon.
    const runs = build.filter(([i]) => i === 'RUN').map(([, a]) => a);
    expect(runs.some((a) => /apt-get install .*\bpython3\b.*\bmake\b.*\bg\+\+/.test(a))).toBe(true);
    expect(runs.some((a) => /npm run build && test -f native\/build\/Release\/fedns_udp\.node/.test(a))).toBe(true);
  });

  it('final stage: the staged directory only, as user 65532, running dist/src/cli.js', () => {
    const copies = final.filter(([i]) => i === 'COPY').map(([, a]) => a);
    expect(copies).toEqual(['--from=build /app /app']);
    expect(final.some(([i]) => i === 'RUN')).toBe(false);
    expect(final.find(([i]) => i === 'USER')?.[1]).toBe(`${IMAGE_USER}:${IMAGE_USER}`);
    const entry = JSON.parse(final.find(([i]) => i === 'ENTRYPOINT')![1]) as string[];
    expect(entry).toEqual(['node', ...IMAGE_NODE_FLAGS, '/app/dist/src/cli.js']);
    expect(existsSync(join(dir, 'dist', 'src', 'cli.js'))).toBe(true);
  });

  it('the deploy manifest runs this image, tagged with the package version, as the same user', () => {
    const docs = parseAllDocuments(readFileSync(join(ROOT, 'config', 'deploy', 'fedns.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, any>);
    const pods = docs.filter((d) => d?.spec?.template?.spec?.containers).map((d) => d.spec.template.spec);
    const containers = pods.flatMap((p) => p.containers as Record<string, any>[]).filter((c) => c.name === 'fedns');
    expect(containers.length).toBeGreaterThan(0);
    for (const c of containers) {
      expect(c.image).toBe(`ghcr.io/fedns/fedns:${pkg.version}`);
      expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
      expect(c.securityContext?.runAsUser ?? IMAGE_USER).toBe(IMAGE_USER);
    }
  });
});

describe('staged runtime (the image contents)', () => {
  it('holds the built code, the default configuration and production dependencies only', () => {
    // native/: the batched UDP addon, staged when this checkout built it (the image always does).
    expect(readdirSync(dir).sort()).toEqual(['config', 'dist', ...(hasUdpAddon ? ['native'] : []), 'node_modules', 'package-lock.json', 'package.json']);
    if (hasUdpAddon) expect(readdirSync(join(dir, 'native', 'build', 'Release'))).toEqual(['fedns_udp.node']);
    expect(readdirSync(join(dir, 'dist')).sort()).toEqual(['src', 'vendor']);
    expect(readdirSync(join(dir, 'config')).sort()).toEqual(['demo', 'fedns.yaml']);
    for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(dir, 'node_modules', dep, 'package.json')), dep).toBe(true);
    // What the lock file marks dev-only (vitest, typescript and what only they need) is left out.
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages).filter(([path, p]) => path && p.dev).map(([path]) => path);
    for (const dep of Object.keys(pkg.devDependencies)) expect(devOnly.some((p) => p === `node_modules/${dep}`) || dep.startsWith('@types/'), dep).toBe(true);
    expect(devOnly.length).toBeGreaterThan(0);
    for (const path of devOnly) expect(existsSync(join(dir, path)), `dev-only ${path}`).toBe(false);
  });

  it('loads the kubeconfig reader from there, as the image user', async () => {
    // The demo has no kube cluster; this is what a pod with one loads first ("#kube-config").
    const kube = pathToFileURL(join(dir, 'dist', 'src', 'cluster', 'kube.js')).href;
    const script = `const m = await import(${JSON.stringify(kube)}); const k = await m.loadKubeClient(); console.log(typeof new k.KubeConfig().loadFromString);`;
    const asRoot = process.getuid?.() === 0;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: tmpdir(), ...(asRoot ? { uid: IMAGE_USER, gid: IMAGE_USER } : {}) }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    expect(out.trim()).toBe('function');
  });

  it('serves the embedded demo from there, as the image user, without writing to its files', async () => {
    const cli = join(dir, 'dist', 'src', 'cli.js');
    // The embedded default on a port the kernel picks (the image's own listen comes from the pod's ConfigMap).
    const config = join(dir, 'config', 'test-listen.yaml');
    writeFileSync(config, testListen(readFileSync(join(dir, 'config', 'fedns.yaml'), 'utf8')));
    const asRoot = process.getuid?.() === 0;
    // With the node flags the image's ENTRYPOINT gives.
    const f = await startFedns({ cli, config, nodeArgs: IMAGE_NODE_FLAGS, user: asRoot ? { uid: IMAGE_USER, gid: IMAGE_USER } : undefined });
    try {
      const r = await dig(['@127.0.0.1', '-p', String(f.port), 'nginx.default.fed.example.com', 'A']);
      expect(r.status).toBe('NOERROR');
      expect(r.answer.map((rr) => rr.data).sort()).toEqual(['192.0.2.10', '198.51.100.10']);
      const version = await dig(['@127.0.0.1', '-p', String(f.port), 'version.bind', 'CH', 'TXT']);
      expect(version.answer.map((rr) => rr.data)).toEqual([`"fedns ${pkg.version}"`]);
      expect(f.stderr()).not.toMatch(/EACCES|EROFS/);
      // The staged addon loads for the image's user (the default udp.batch is auto).
      expect(f.logs().find((r) => r.msg === 'UDP path: batched' || r.msg === 'UDP path: dgram')?.msg).toBe(hasUdpAddon ? 'UDP path: batched' : 'UDP path: dgram');
    } finally {
      await f.stop();
    }
  });
});
