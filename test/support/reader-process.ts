// The bundled kubeconfig reader (dist/vendor/kube-config.js) run in a node process of its own:
// for what only a fresh process shows (which packages it loaded) or only its start can set
// (a CA that Node.js's own fetch trusts, NODE_EXTRA_CA_CERTS).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './demo.js';

export interface ReaderRun {
  /** The request headers the reader set, unless it failed. */
  headers?: Record<string, string>;
  /** The class of the agent it chose, if any. */
  agent?: string;
  /** Packages of node_modules that node had loaded as CommonJS by then. */
  packages: string[];
  /** The reader's error message, when applying the kubeconfig failed. */
  error?: string;
}

/** Loads `kubeconfig` (an object) into the bundled KubeConfig and applies it to request options, in a new node process with `env` added. */
export async function applyInOwnProcess(kubeconfig: object, env: Record<string, string> = {}): Promise<ReaderRun> {
  const script = `
    import { createRequire } from 'node:module';
    const { KubeConfig } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/vendor/kube-config.js')).href)});
    const kc = new KubeConfig();
    kc.loadFromString(${JSON.stringify(JSON.stringify(kubeconfig))});
    const opts = { headers: {} };
    let error;
    try { await kc.applyToHTTPSOptions(opts); } catch (e) { error = e.message; }
    const packages = new Set();
    for (const file of Object.keys(createRequire(import.meta.url).cache)) {
      if (!file.includes('/node_modules/')) continue;
      const parts = file.split('/node_modules/').pop().split('/');
      packages.add(parts[0].startsWith('@') ? parts[0] + '/' + parts[1] : parts[0]);
    }
    console.log(JSON.stringify(error === undefined ? { headers: opts.headers, agent: opts.agent?.constructor.name, packages: [...packages].sort() } : { error, packages: [...packages].sort() }));`;
  // Not spawnSync: a test's own servers (an OIDC issuer) must keep answering meanwhile.
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`the reader's process failed (exit ${code}): ${err}`);
  return JSON.parse(out) as ReaderRun;
}
