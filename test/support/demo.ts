// The demo configuration as tests use it: loaded in-process, or copied to a scratch directory.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Fedns } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/ops/log.js';

const above = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The repository, whether this file runs from test/support or compiled, from dist/test/support (benchmarks). */
export const ROOT = basename(above) === 'dist' ? dirname(above) : above;
export const DEMO_CONFIG = join(ROOT, 'config', 'fedns.yaml');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');

/** Runs the built `fedns` with `args` to its end: exit code, stdout and stderr (a failure is a result, not a throw). */
export function runCli(args: string[], timeoutMs = 15_000, env?: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs, env: env && { ...process.env, ...env } }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out: stdout, err: stderr });
    });
  });
}

/** Copies config/ to a scratch directory, with `edit` applied to the YAML text. */
export function demoCopy(edit: (yaml: string) => string = (y) => y): { dir: string; config: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fedns-demo-'));
  cpSync(join(ROOT, 'config', 'demo'), join(dir, 'demo'), { recursive: true });
  const config = join(dir, 'fedns.yaml');
  writeFileSync(config, edit(readFileSync(DEMO_CONFIG, 'utf8')));
  return { dir, config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The demo served in-process on a port the kernel picks, without the ops listener, once every
 * cluster has synced. `edit` changes the YAML further.
 */
export async function startDemo(edit: (yaml: string) => string = (y) => y): Promise<{ server: Fedns; port: number; dir: string; stop(): Promise<void> }> {
  const copy = demoCopy((y) => edit(y.replace('127.0.0.1:1053', '127.0.0.1:0').replace('listen: 127.0.0.1:9153', 'listen: null')));
  const server = new Fedns(loadConfig(copy.config), createLogger('silent'));
  await server.start();
  while (!server.federation.snapshot.ready) await new Promise((r) => setTimeout(r, 10));
  return {
    server,
    port: server.dns.addresses()[0].port,
    dir: copy.dir,
    async stop() {
      await server.stop(100);
      copy.cleanup();
    },
  };
}

/**
 * Demos served as startDemo serves them, with the ops listener on a port of its own too, and the
 * client sockets a test opens against them: stopAll() (a test file's afterEach) destroys the
 * sockets and stops each demo started.
 */
export class DemoServers {
  private readonly running: { stop(): Promise<void>; sockets: Socket[] }[] = [];

  async start(): Promise<{ server: Fedns; sockets: Socket[] }> {
    const demo = await startDemo((y) => y.replace('listen: null', 'listen: 127.0.0.1:0'));
    const sockets: Socket[] = [];
    this.running.push({ stop: demo.stop, sockets });
    return { server: demo.server, sockets };
  }

  async stopAll(): Promise<void> {
    for (const r of this.running.splice(0)) {
      for (const s of r.sockets) s.destroy();
      await r.stop();
    }
  }
}
