/**
 * Runs the built fedns CLI (`node dist/src/cli.js serve`) as a child process for end-to-end
 * tests, on a scratch copy of the demo configuration listening on 127.0.0.1 with a port the
 * kernel picks (the actual port is read from the "listening on UDP and TCP" log line).
 *
 *   const f = await startFedns({ edit: withYaml('tcp: { idleTimeout: 1 }') });
 *   await dig(['@127.0.0.1', '-p', String(f.port), 'nginx.default.fed.example.com', 'A']);
 *   await f.stop();
 *
 * dist/ must be current: `npm test` runs the build before vitest (so does the documented
 * `npm run build && npx vitest run FILE`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { killOnExit, terminate } from './children.js';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { CLI, demoCopy } from './demo.js';
import { Waiters } from './waiters.js';

export interface FednsOptions {
  /** Use this configuration file as it is (no copy, no edits). Default: a scratch copy of the demo. */
  config?: string;
  /**
   * Text edit applied to the demo YAML after the defaults (listen 127.0.0.1:0, ops listener off).
   * Ignored when `config` is given.
   */
  edit?: (yaml: string) => string;
  /** Extra environment for the server process. */
  env?: NodeJS.ProcessEnv;
  /** Extra CLI arguments after `serve --config FILE`, e.g. ["--log-level", "debug"]. */
  args?: string[];
  /** Flags for node itself, before the script, e.g. ["--heap-growing-percent=0"]. */
  nodeArgs?: string[];
  /**
   * What "started" means: 'listening' (the listening log line) or 'published' (also a
   * "zone published" line, i.e. the member clusters' data is being served). Default 'published'.
   */
  waitFor?: 'listening' | 'published';
  /** Bound on the wait for start-up (default 10 s). */
  timeoutMs?: number;
  /** The fedns entry point to run (default: this checkout's dist/src/cli.js). */
  cli?: string;
  /** Run as this user and group (needs root), e.g. the container image's 65532. */
  user?: { uid: number; gid: number };
}

export interface FednsProcess {
  /** DNS port on 127.0.0.1 (UDP and TCP). */
  readonly port: number;
  /** Directory holding the configuration (the scratch copy: config at DIR/fedns.yaml, manifests under DIR/demo/). */
  readonly dir: string;
  /** Path of the configuration file the server runs with. */
  readonly config: string;
  readonly process: ChildProcess;
  /** Everything the server wrote to stderr so far (pino JSON lines). */
  stderr(): string;
  /** stderr parsed as JSON log records (non-JSON lines skipped). */
  logs(): Record<string, unknown>[];
  /** Waits (bounded) for a log record matching `pred`; rejects with the stderr on timeout or exit. */
  waitForLog(pred: (rec: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string): Promise<Record<string, unknown>>;
  /** True once the process has exited. */
  exited(): boolean;
  /** Exit code / signal, once exited. */
  exitInfo(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGTERM, wait for exit (SIGKILL after 5 s), remove the scratch copy. Idempotent. */
  stop(): Promise<void>;
}

/** Default edits of the demo YAML: kernel-chosen port on loopback, no ops listener. */
export function testListen(yaml: string): string {
  const out = yaml.replace(/^listen:\n(?:[ \t]+- .*\n)+/m, 'listen:\n  - 127.0.0.1:0\n').replace(/^ops:\n(?:[ \t]+.*\n)+/m, 'ops: { listen: null }\n');
  if (!/^ {2}- 127\.0\.0\.1:0$/m.test(out) || !/^ops: \{ listen: null \}$/m.test(out)) {
    throw new Error('startFedns: the demo YAML no longer has the expected "listen:" / "ops:" blocks; update testListen()');
  }
  return out;
}

/** An edit that appends top-level YAML (e.g. 'tcp: { idleTimeout: 1 }') to the configuration. */
export function withYaml(extra: string): (yaml: string) => string {
  return (yaml) => `${yaml.replace(/\s*$/, '\n')}${extra.replace(/\s*$/, '\n')}`;
}


function parseLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* partial or non-JSON line */
    }
  }
  return out;
}

const LIMIT = 4 * 1024 * 1024;

/** Spawns `fedns serve` and resolves once it listens (and, by default, has published the zone). */
export async function startFedns(opts: FednsOptions = {}): Promise<FednsProcess> {
  const cli = opts.cli ?? CLI;
  if (!existsSync(cli)) throw new Error(`startFedns: ${cli} not found; build first (npm run build)`);
  let scratch: { dir: string; config: string; cleanup(): void } | undefined;
  let config: string;
  let dir: string;
  if (opts.config) {
    config = opts.config;
    dir = dirname(config);
  } else {
    const user = opts.edit ?? ((y: string) => y);
    scratch = demoCopy((y) => user(testListen(y)));
    config = scratch.config;
    dir = scratch.dir;
  }
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), cli, 'serve', '--config', config, ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
    ...opts.user,
  });
  killOnExit(child);
  let err = '';
  let out = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const waiters = new Waiters();
  const poke = () => waiters.poke();
  child.stderr!.on('data', (b: Buffer) => {
    err += b.toString('utf8');
    if (err.length > LIMIT) err = err.slice(err.length - LIMIT);
    poke();
  });
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString('utf8');
    if (out.length > LIMIT) out = out.slice(out.length - LIMIT);
  });
  const exited = new Promise<void>((resolve) => {
    child.once('error', (e) => {
      err += `\n[spawn error] ${e.message}\n`;
      exit ??= { code: null, signal: null };
      poke();
      resolve();
    });
    child.once('close', (code, signal) => {
      exit = { code, signal };
      poke();
      resolve();
    });
  });

  const waitForLog: FednsProcess['waitForLog'] = (pred, timeoutMs = 10_000, what = 'a matching log line') =>
    waiters.until(
      () => {
        const hit = parseLines(err).find(pred);
        if (hit) return hit;
        if (exit) throw new Error(`fedns exited (code ${exit.code}, signal ${exit.signal}) while waiting for ${what}\n--- stderr ---\n${err}${out ? `\n--- stdout ---\n${out}` : ''}`);
        return undefined;
      },
      timeoutMs,
      () => new Error(`fedns: no ${what} within ${timeoutMs} ms\n--- stderr ---\n${err}`),
    );

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await terminate(child, exited, () => exit !== undefined);
      scratch?.cleanup();
    })();
    return stopping;
  };

  try {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const started = Date.now();
    const rec = await waitForLog((r) => r.msg === 'listening on UDP and TCP' && typeof r.address === 'string', timeoutMs, '"listening on UDP and TCP" log line');
    const m = /^127\.0\.0\.1:(\d+)$/.exec(rec.address as string);
    if (!m) throw new Error(`fedns listens on ${String(rec.address)}, not on 127.0.0.1; tests only use loopback\n--- stderr ---\n${err}`);
    const port = Number(m[1]);
    if ((opts.waitFor ?? 'published') === 'published') {
      // A sync rebuilt in slices publishes before it is complete (ready: false, names not built yet are SERVFAIL).
      await waitForLog((r) => r.msg === 'zone published' && r.ready === true, Math.max(1000, timeoutMs - (Date.now() - started)), '"zone published" log line of a ready zone');
    }
    return {
      port,
      dir,
      config,
      process: child,
      stderr: () => err,
      logs: () => parseLines(err),
      waitForLog,
      exited: () => exit !== undefined,
      exitInfo: () => exit,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
