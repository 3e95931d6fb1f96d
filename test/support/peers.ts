/**
 * Helpers to run real DNS peers (knotd, unbound, dnsmasq) as child processes in tests.
 *
 * Everything binds to 127.0.0.1 on high ports and lives in a scratch directory under
 * os.tmpdir(); nothing is installed or run as a system service. Every peer is a direct
 * child of the test process (no shell), and `stop()` kills exactly that pid.
 *
 * Typical use in a vitest file:
 *
 *   const hasKnot = requirePeer('knotd');
 *   describe.skipIf(!hasKnot)('against knotd', () => {
 *     let knot: KnotPeer;
 *     beforeAll(async () => { knot = await startKnot({ origin: 'example.com.', zoneText }); });
 *     afterAll(async () => { await knot?.stop(); });
 *   });
 *
 * Environment:
 *   FEDNS_STRICT_PEERS=1   a missing peer binary throws (the test file fails) instead of skipping.
 *   FEDNS_HIDE_PEERS=a,b   pretend these binaries are not installed (to exercise the skip/strict paths).
 *   FEDNS_KEEP_PEER_DIRS=1 do not delete scratch dirs (configs, logs) on cleanup; their paths are printed.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { accessSync, constants as fsConstants, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

// ---------------------------------------------------------------------------------------------
// Peer availability
// ---------------------------------------------------------------------------------------------

/** Debian package that provides each binary we know about (for the skip/strict messages). */
export const PEER_PACKAGES: Readonly<Record<string, string>> = {
  knotd: 'knot',
  knotc: 'knot',
  keymgr: 'knot',
  kdig: 'knot-dnsutils',
  dig: 'dnsutils',
  unbound: 'unbound',
  dnsmasq: 'dnsmasq',
  nsd: 'nsd',
  named: 'bind9',
  dnsperf: 'dnsperf',
  'dnssec-verify': 'bind9-utils',
  promtool: 'prometheus',
};

/**
 * Daemons live in sbin, which is often not on a non-root user's PATH on Debian, so we look
 * there too after PATH.
 */
const EXTRA_BIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function truthyEnv(name: string): boolean {
  const v = process.env[name];
  return v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
}

/** True when FEDNS_STRICT_PEERS asks for missing peers to be a failure. */
export function strictPeers(): boolean {
  return truthyEnv('FEDNS_STRICT_PEERS');
}

function hiddenPeers(): Set<string> {
  return new Set(
    (process.env.FEDNS_HIDE_PEERS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Absolute path of `binary` (searched on PATH, then /usr/local/sbin, /usr/sbin, /sbin),
 * or undefined when it is not installed (or hidden via FEDNS_HIDE_PEERS).
 */
export function findBinary(binary: string): string | undefined {
  if (hiddenPeers().has(binary)) return undefined;
  if (binary.includes('/')) return isExecutableFile(binary) ? path.resolve(binary) : undefined;
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of [...dirs, ...EXTRA_BIN_DIRS]) {
    const candidate = path.join(dir, binary);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

const warnedMissing = new Set<string>();

function installHint(binary: string): string {
  const pkg = PEER_PACKAGES[binary];
  return pkg ? `apt-get install -y ${pkg}` : `install ${binary}`;
}

/**
 * Is `binary` available? Meant to be called at module load of a test file:
 *
 *   const hasKnot = requirePeer('knotd');
 *   describe.skipIf(!hasKnot)(...)
 *
 * Missing binary:
 *  - FEDNS_STRICT_PEERS=1: throws. Thrown at module load, vitest reports the whole file as
 *    FAILED ("Test Files 1 failed", non-zero exit) - nothing is silently skipped in CI.
 *  - otherwise: prints a loud warning to stderr (once per binary per test file) and returns
 *    false so the caller can skip.
 */
export function requirePeer(binary: string): boolean {
  if (findBinary(binary) !== undefined) return true;
  const hint = installHint(binary);
  if (strictPeers()) {
    throw new Error(
      `DNS peer "${binary}" is not installed (searched PATH and ${EXTRA_BIN_DIRS.join(', ')}) ` +
        `and FEDNS_STRICT_PEERS=1 forbids skipping: ${hint}`,
    );
  }
  if (!warnedMissing.has(binary)) {
    warnedMissing.add(binary);
    process.stderr.write(
      `\n*** SKIPPING: ${binary} not installed (${hint}); set FEDNS_STRICT_PEERS=1 to fail instead ***\n\n`,
    );
  }
  return false;
}

/** requirePeer over several binaries; true only if all are present (warns/throws for each missing one). */
export function requirePeers(...binaries: string[]): boolean {
  let ok = true;
  for (const b of binaries) ok = requirePeer(b) && ok;
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Ports and scratch directories
// ---------------------------------------------------------------------------------------------

const LOOPBACK = '127.0.0.1';
const handedOutPorts = new Set<number>();

/**
 * Range to pick ports from: below the kernel's ephemeral range, so a port we hand out cannot
 * be grabbed as a client source port (e.g. by dig) between the check and the peer binding it.
 */
function portRange(): [number, number] {
  let ephLo = 32768;
  let ephHi = 60999;
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi)) [ephLo, ephHi] = [lo, hi];
  } catch {
    /* not Linux: keep defaults */
  }
  if (ephLo - 20000 >= 2000) return [20000, ephLo - 1];
  if (65535 - ephHi >= 2000) return [ephHi + 1, 65535];
  return [20000, 60000];
}

function canBindTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: LOOPBACK, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function canBindUdp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket({ type: 'udp4' });
    sock.once('error', () => {
      sock.close();
      resolve(false);
    });
    sock.bind({ port, address: LOOPBACK, exclusive: true }, () => sock.close(() => resolve(true)));
  });
}

/** Is `port` currently free on 127.0.0.1 for both TCP and UDP? */
export async function isPortFree(port: number): Promise<boolean> {
  return (await canBindTcp(port)) && (await canBindUdp(port));
}

/**
 * A port free for BOTH UDP and TCP on 127.0.0.1 (both are actually bound to check).
 * Never returns the same port twice within one test file.
 */
export async function freePort(): Promise<number> {
  const [lo, hi] = portRange();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (handedOutPorts.has(port)) continue;
    if (await isPortFree(port)) {
      handedOutPorts.add(port);
      return port;
    }
  }
  throw new Error(`freePort: no free TCP+UDP port found on ${LOOPBACK} in ${lo}-${hi}`);
}

export interface TmpDir {
  readonly path: string;
  /** Remove the directory (recursively). Idempotent. Kept when FEDNS_KEEP_PEER_DIRS=1. */
  cleanup(): Promise<void>;
}

const liveDirs = new Set<string>();

/** A fresh scratch directory under os.tmpdir(); also removed at process exit if not cleaned up. */
export async function tmpDir(prefix = 'fedns-'): Promise<TmpDir> {
  const safe = prefix.replace(/[^A-Za-z0-9._-]/g, '_');
  const dir = await mkdtemp(path.join(os.tmpdir(), safe.endsWith('-') ? safe : `${safe}-`));
  liveDirs.add(dir);
  installExitHook();
  let done: Promise<void> | undefined;
  return {
    path: dir,
    cleanup() {
      done ??= (async () => {
        liveDirs.delete(dir);
        if (truthyEnv('FEDNS_KEEP_PEER_DIRS')) {
          process.stderr.write(`[fedns peers] keeping ${dir}\n`);
          return;
        }
        await rm(dir, { recursive: true, force: true });
      })();
      return done;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Process bookkeeping
// ---------------------------------------------------------------------------------------------

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Synchronously SIGKILL our still-running children and remove our scratch dirs. */
function emergencyCleanup(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  liveChildren.clear();
  if (!truthyEnv('FEDNS_KEEP_PEER_DIRS')) {
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    }
  }
  liveDirs.clear();
}

/**
 * Last resort if a test file ends without calling stop(): vitest's fork workers are terminated
 * with SIGTERM (no 'exit' event), so hook the signals too. After cleaning up, a signal is
 * re-raised when nobody else listens for it, preserving the default "terminate" behaviour.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', emergencyCleanup);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(sig, () => {
      emergencyCleanup();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

export interface PeerHandle {
  /** Human-readable name, e.g. "knotd". */
  readonly name: string;
  /** DNS port on 127.0.0.1 (UDP and TCP). */
  readonly port: number;
  /** Always "127.0.0.1". */
  readonly address: string;
  /** pid of the peer process (a direct child of this process). */
  readonly pid: number;
  /** Scratch directory with the generated config (removed by stop()). */
  readonly dir: string;
  /** Path of the generated config file (undefined when configured on the command line). */
  readonly configFile?: string;
  /** Captured stdout+stderr of the peer (last 256 KiB). */
  output(): string;
  /** True once the process has exited. */
  exited(): boolean;
  /** Terminate (SIGTERM, SIGKILL after 5 s), wait for exit, remove the scratch dir. Idempotent. */
  stop(): Promise<void>;
}

interface SpawnedPeer {
  child: ChildProcess;
  output(): string;
  exitInfo(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  exitPromise: Promise<void>;
}

const OUTPUT_LIMIT = 256 * 1024;

function spawnPeer(bin: string, args: string[], cwd: string): SpawnedPeer {
  installExitHook();
  const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  let out = '';
  const append = (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.length > OUTPUT_LIMIT) out = out.slice(out.length - OUTPUT_LIMIT);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  liveChildren.add(child);
  const exitPromise = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      append(Buffer.from(`\n[spawn error] ${err.message}\n`));
      exitInfo ??= { code: null, signal: null };
      liveChildren.delete(child);
      resolve();
    });
    child.once('close', (code, signal) => {
      exitInfo = { code, signal };
      liveChildren.delete(child);
      resolve();
    });
  });
  return { child, output: () => out, exitInfo: () => exitInfo, exitPromise };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function terminate(sp: SpawnedPeer): Promise<void> {
  if (sp.exitInfo() === undefined) {
    sp.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (sp.exitInfo() === undefined) sp.child.kill('SIGKILL');
    }, 5000);
    await sp.exitPromise;
    clearTimeout(timer);
  }
  await sp.exitPromise;
}

function indentOutput(text: string): string {
  const t = text.trim();
  return t ? t.split('\n').map((l) => `    | ${l}`).join('\n') : '    | (no output)';
}

interface LaunchSpec {
  name: string;
  bin: string;
  args: (port: number) => string[];
  /** Write config files etc. for `port` into `dir`; returns the config file path if any. */
  prepare: (port: number, dir: string) => Promise<string | undefined>;
  /** Readiness check; resolves true when ready. Called repeatedly. */
  ready: (port: number) => Promise<boolean>;
  readyDescription: string;
  /** Output that means the peer will never become ready (fail fast instead of waiting). */
  fatalOutput?: RegExp;
  port?: number;
  readyTimeoutMs?: number;
  dirPrefix: string;
}

/**
 * Spawn a peer and wait (bounded) for it to become ready. If the port was chosen by us and the
 * peer dies early (e.g. lost a race for the port), retry with a fresh port up to 3 times.
 */
async function launch(spec: LaunchSpec): Promise<PeerHandle> {
  const attempts = spec.port === undefined ? 3 : 1;
  let lastError: Error | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = spec.port ?? (await freePort());
    const scratch = await tmpDir(spec.dirPrefix);
    let sp: SpawnedPeer | undefined;
    try {
      const configFile = await spec.prepare(port, scratch.path);
      const args = spec.args(port);
      sp = spawnPeer(spec.bin, args, scratch.path);
      const started = Date.now();
      const timeoutMs = spec.readyTimeoutMs ?? 10_000;
      for (;;) {
        const info = sp.exitInfo();
        if (info !== undefined) {
          throw new Error(
            `${spec.name} exited (code ${info.code}, signal ${info.signal}) before becoming ready ` +
              `on ${LOOPBACK}@${port}.\n  command: ${spec.bin} ${args.join(' ')}\n  output:\n${indentOutput(sp.output())}` +
              (configFile ? `\n  config (${configFile}):\n${indentOutput(readFileSync(configFile, 'utf8'))}` : ''),
          );
        }
        if (await spec.ready(port)) break;
        if (spec.fatalOutput?.test(sp.output())) {
          throw new Error(
            `${spec.name} failed to start on ${LOOPBACK}@${port}.\n  command: ${spec.bin} ${args.join(' ')}\n` +
              `  output:\n${indentOutput(sp.output())}`,
          );
        }
        if (Date.now() - started > timeoutMs) {
          throw new Error(
            `${spec.name} did not become ready within ${timeoutMs} ms (waiting for ${spec.readyDescription} ` +
              `on ${LOOPBACK}@${port}).\n  command: ${spec.bin} ${args.join(' ')}\n  output:\n${indentOutput(sp.output())}`,
          );
        }
        await sleep(50);
      }
      const live = sp;
      let stopping: Promise<void> | undefined;
      return {
        name: spec.name,
        port,
        address: LOOPBACK,
        pid: live.child.pid ?? -1,
        dir: scratch.path,
        configFile,
        output: () => live.output(),
        exited: () => live.exitInfo() !== undefined,
        stop() {
          stopping ??= (async () => {
            await terminate(live);
            await scratch.cleanup();
          })();
          return stopping;
        },
      };
    } catch (err) {
      if (sp) await terminate(sp);
      await scratch.cleanup();
      lastError = err as Error;
      const lostPortRace =
        sp?.exitInfo() !== undefined && /address already in use|cannot bind|can't bind|failed to bind/i.test(sp.output());
      if (!lostPortRace || attempt === attempts) throw lastError;
      // The port may have been taken between freePort() and bind: try another one.
    }
  }
  throw lastError ?? new Error(`${spec.name}: failed to start`);
}

function requireBinary(binary: string): string {
  const bin = findBinary(binary);
  if (!bin) {
    throw new Error(`${binary} is not installed (${installHint(binary)}); guard the test with requirePeer('${binary}')`);
  }
  return bin;
}

/**
 * Runs a peer tool to its end (no shell, LC_ALL=C, killed after `timeoutMs`): its exit code (1 when
 * killed) and stdout followed by stderr. A non-zero exit is a result, not an error.
 */
export function runPeer(binary: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number; out: string }> {
  const bin = requireBinary(binary);
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 30_000, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      const code = err ? Number((err as { code?: unknown }).code) || 1 : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Minimal hand-made DNS probe (for readiness checks; never leaves 127.0.0.1)
// ---------------------------------------------------------------------------------------------

export const QTYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, ANY: 255 } as const;

/** Wire-format query: header + one question, class IN, no EDNS. */
export function encodeQuery(id: number, name: string, qtype: number, recursionDesired = false): Buffer {
  const labels = name.split('.').filter((l) => l.length > 0);
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header.writeUInt16BE(recursionDesired ? 0x0100 : 0, 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  parts.push(header);
  for (const label of labels) {
    const bytes = Buffer.from(label, 'utf8');
    if (bytes.length > 63) throw new Error(`label too long: ${label}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  const tail = Buffer.alloc(5);
  tail.writeUInt8(0, 0);
  tail.writeUInt16BE(qtype, 1);
  tail.writeUInt16BE(1, 3); // IN
  parts.push(tail);
  return Buffer.concat(parts);
}

export interface ProbeReply {
  id: number;
  rcode: number;
  qr: boolean;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

/** Decode just the 12-byte header of a DNS message. */
export function decodeHeader(msg: Buffer): ProbeReply {
  if (msg.length < 12) throw new Error('short DNS message');
  const flags = msg.readUInt16BE(2);
  return {
    id: msg.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0x000f,
    qdcount: msg.readUInt16BE(4),
    ancount: msg.readUInt16BE(6),
    nscount: msg.readUInt16BE(8),
    arcount: msg.readUInt16BE(10),
  };
}

/**
 * Send one UDP query to 127.0.0.1@port and return the reply header, or null on timeout / ICMP
 * error. Only ever talks to 127.0.0.1.
 */
export function udpProbe(
  port: number,
  name: string,
  qtype: number = QTYPE.SOA,
  timeoutMs = 300,
  recursionDesired = false,
): Promise<ProbeReply | null> {
  return new Promise((resolve) => {
    const id = Math.floor(Math.random() * 0x10000);
    const sock = dgram.createSocket('udp4');
    let finished = false;
    const finish = (value: ProbeReply | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        /* ignore */
      }
      resolve(value);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.on('error', () => finish(null));
    sock.on('message', (msg, rinfo) => {
      if (rinfo.address !== LOOPBACK || rinfo.port !== port || msg.length < 12) return;
      const h = decodeHeader(msg);
      if (h.id !== id || !h.qr) return;
      finish(h);
    });
    // Connected socket: an ICMP port-unreachable (peer not bound yet) surfaces as an immediate
    // ECONNREFUSED error instead of a timeout.
    sock.bind(0, LOOPBACK, () => {
      sock.connect(port, LOOPBACK, (err?: Error) => {
        if (err) return finish(null);
        sock.send(encodeQuery(id, name, qtype, recursionDesired), (sendErr) => {
          if (sendErr) finish(null);
        });
      });
    });
  });
}

/** A name no peer here should forward anywhere: answered locally (REFUSED/NXDOMAIN) by all of them. */
const PROBE_NAME = 'fedns-readiness-probe.invalid.';

function fqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

function bare(name: string): string {
  return name.replace(/\.+$/, '');
}

// ---------------------------------------------------------------------------------------------
// knotd
// ---------------------------------------------------------------------------------------------

export interface KnotContext {
  /** Scratch directory (rundir; also holds the LMDB databases and the control socket). */
  dir: string;
  port: number;
  /** Absolute path of the zone file (given zoneFile, or zoneText written into dir), if any. */
  zoneFile?: string;
  origin?: string;
}

export interface KnotOptions {
  /** Zone apex, e.g. "example.com." (needed for the default zone section and SOA readiness). */
  origin?: string;
  /** Existing zone file (read-only use: zonefile-sync is -1). */
  zoneFile?: string;
  /** Zone file contents; written to DIR/zone.db. Alternative to zoneFile. */
  zoneText?: string;
  /** Fixed port; default: freePort(). */
  port?: number;
  /** Extra lines for the `server:` section (4-space indent), e.g. '    identity: "ns1"'. */
  serverOptions?: string;
  /** Raw top-level config text inserted before `zone:` (e.g. `remote:`, `acl:`, `template:` sections). */
  extraConfig?: string | ((ctx: KnotContext) => string);
  /** Extra lines appended to the default zone entry, e.g. "    acl: [xfr]" (4-space indent). */
  zoneOptions?: string | ((ctx: KnotContext) => string);
  /**
   * Full `zone:` section text replacing the default one (for secondary mode, several zones...).
   * Must start with "zone:".
   */
  zoneConfig?: string | ((ctx: KnotContext) => string);
  /**
   * 'soa' (default when origin is set): wait until `origin SOA` is answered authoritatively.
   * 'listening': wait for any reply (e.g. a secondary whose zone is not transferred yet).
   */
  ready?: 'soa' | 'listening';
  readyTimeoutMs?: number;
  /** knotd log level on stderr (default "warning"); see output(). */
  logLevel?: 'critical' | 'error' | 'warning' | 'notice' | 'info' | 'debug';
}

export interface KnotPeer extends PeerHandle {
  /** Path of knotd's control socket (for `knotc -s SOCKET ...`). */
  readonly controlSocket: string;
  readonly zoneFile?: string;
}

function resolveText(v: string | ((ctx: KnotContext) => string) | undefined, ctx: KnotContext): string {
  if (v === undefined) return '';
  return typeof v === 'function' ? v(ctx) : v;
}

/** The knotd config used by startKnot (exported for inspection/debugging). */
export function knotConfig(opts: KnotOptions, ctx: KnotContext): string {
  const dir = ctx.dir;
  let zoneSection = resolveText(opts.zoneConfig, ctx);
  if (!zoneSection) {
    if (!ctx.origin || !ctx.zoneFile) {
      throw new Error('startKnot: need origin + zoneFile/zoneText, or a full zoneConfig');
    }
    const extra = resolveText(opts.zoneOptions, ctx).replace(/\s+$/, '');
    zoneSection = [
      'zone:',
      `  - domain: ${ctx.origin}`,
      `    file: "${ctx.zoneFile}"`,
      '    zonefile-sync: -1',
      '    zonefile-load: whole',
      '    journal-content: none',
      ...(extra ? [extra] : []),
    ].join('\n');
  }
  return [
    'server:',
    `    rundir: "${dir}"`,
    `    listen: ${LOOPBACK}@${ctx.port}`,
    '    udp-workers: 1',
    '    tcp-workers: 1',
    '    background-workers: 1',
    (opts.serverOptions ?? '').replace(/\s+$/, ''),
    'log:',
    '  - target: stderr',
    `    any: ${opts.logLevel ?? 'warning'}`,
    'database:',
    `    storage: "${dir}/db"`,
    'control:',
    `    listen: "${dir}/knot.sock"`,
    resolveText(opts.extraConfig, ctx).replace(/\s+$/, ''),
    zoneSection.replace(/\s+$/, ''),
    '',
  ]
    .filter((l, i, a) => l !== '' || i === a.length - 1)
    .join('\n');
}

/** Run `knotd -c FILE` and wait until it serves `origin SOA` over UDP on 127.0.0.1. */
export async function startKnot(opts: KnotOptions): Promise<KnotPeer> {
  const bin = requireBinary('knotd');
  const origin = opts.origin ? fqdn(opts.origin) : undefined;
  const readyMode = opts.ready ?? (origin ? 'soa' : 'listening');
  if (readyMode === 'soa' && !origin) throw new Error("startKnot: ready: 'soa' needs origin");
  if (opts.zoneFile && opts.zoneText !== undefined) throw new Error('startKnot: give zoneFile or zoneText, not both');
  let zoneFile: string | undefined;
  let controlSocket = '';
  const handle = await launch({
    name: 'knotd',
    bin,
    dirPrefix: 'fedns-knot-',
    port: opts.port,
    readyTimeoutMs: opts.readyTimeoutMs,
    readyDescription: readyMode === 'soa' ? `an authoritative answer to "${origin} SOA"` : 'any DNS reply',
    // With a zone file that does not load, knotd keeps running (answering SERVFAIL): fail fast.
    fatalOutput: readyMode === 'soa' ? /zone event 'load' failed/ : undefined,
    async prepare(port, dir) {
      zoneFile = opts.zoneFile ? path.resolve(opts.zoneFile) : undefined;
      if (opts.zoneText !== undefined) {
        zoneFile = path.join(dir, 'zone.db');
        await writeFile(zoneFile, opts.zoneText);
      }
      controlSocket = path.join(dir, 'knot.sock');
      const configFile = path.join(dir, 'knot.conf');
      await writeFile(configFile, knotConfig(opts, { dir, port, zoneFile, origin }));
      return configFile;
    },
    args: () => ['-c', 'knot.conf'],
    async ready(port) {
      if (readyMode === 'listening') return (await udpProbe(port, PROBE_NAME, QTYPE.SOA)) !== null;
      const r = await udpProbe(port, origin!, QTYPE.SOA);
      return r !== null && r.rcode === 0 && r.aa && r.ancount > 0;
    },
  });
  return Object.assign(handle, { controlSocket, zoneFile });
}

// ---------------------------------------------------------------------------------------------
// unbound (recursive resolver with a stub zone pointing at the server under test)
// ---------------------------------------------------------------------------------------------

export interface UnboundOptions {
  /** Port on 127.0.0.1 of the authoritative server for `domain`. */
  upstreamPort: number;
  /** Domain to stub to the upstream, e.g. "example.com". */
  domain: string;
  /** More domains the upstream is authoritative for, stubbed the same way (e.g. "clusterset.local"). */
  moreDomains?: string[];
  port?: number;
  /** Default true. */
  qnameMinimisation?: boolean;
  /** unbound verbosity (0-5); default 1 (errors + start/stop). 4 logs every query sent upstream. */
  verbosity?: number;
  /** Extra raw lines for the `server:` clause (4-space indented), e.g. "    minimal-responses: no". */
  extraServerConfig?: string;
  /**
   * Validate DOMAIN from these trust anchors (records in presentation format, e.g. the zone's KSK
   * "example.com. DNSKEY 257 3 13 ..."): module-config "validator iterator" instead of "iterator"
   * and DOMAIN no longer declared insecure. Default: no validation.
   */
  trustAnchors?: string[];
  /**
   * EDNS Client Subnet (RFC 7871) towards the upstream: the subnetcache module goes first in
   * module-config, the upstream (127.0.0.1) is allowed to receive the option, and answers are
   * cached by the scope the upstream returns. Default: off (no ECS is sent).
   */
  clientSubnet?: {
    /** Bits of an IPv4 client address sent (max-client-subnet-ipv4; unbound's default 24). */
    ipv4Bits?: number;
  };
  readyTimeoutMs?: number;
}

/**
 * The unbound config used by startUnbound. On top of the known-good recipe it adds, so that
 * no query can ever leave 127.0.0.1:
 *  - outgoing-interface: 127.0.0.1 (sends to non-loopback addresses fail with EINVAL),
 *  - local-zone "." refuse + local-zone DOMAIN transparent (client queries outside DOMAIN are
 *    REFUSED locally instead of being iterated from the root),
 *  - stub-zone "." -> the upstream (CNAME chases out of DOMAIN and root priming go to the
 *    upstream, which REFUSEs -> quick SERVFAIL, instead of real root servers),
 *  - do-ip6: no.
 */
export function unboundConfig(opts: UnboundOptions, port: number, dir: string): string {
  const domain = bare(opts.domain);
  const more = (opts.moreDomains ?? []).map(bare);
  const ecs = opts.clientSubnet;
  return [
    'server:',
    `    interface: ${LOOPBACK}@${port}`,
    `    port: ${port}`,
    '    do-daemonize: no',
    '    username: ""',
    '    chroot: ""',
    `    directory: "${dir}"`,
    '    pidfile: ""',
    '    use-syslog: no',
    '    logfile: ""',
    `    verbosity: ${opts.verbosity ?? 1}`,
    '    do-not-query-localhost: no',
    `    qname-minimisation: ${opts.qnameMinimisation === false ? 'no' : 'yes'}`,
    '    harden-below-nxdomain: yes',
    `    access-control: 127.0.0.0/8 allow`,
    ...(opts.trustAnchors?.length
      ? [
          `    module-config: "${ecs ? 'subnetcache ' : ''}validator iterator"`,
          ...opts.trustAnchors.map((ta) => `    trust-anchor: "${ta.replace(/\s+/g, ' ').trim()}"`),
          // No RFC 8145 key-tag queries (they would go to the "." stub and be REFUSED).
          '    trust-anchor-signaling: no',
        ]
      : [`    module-config: "${ecs ? 'subnetcache ' : ''}iterator"`, ...[domain, ...more].map((d) => `    domain-insecure: "${d}"`)]),
    ...(ecs
      ? [
          `    send-client-subnet: ${LOOPBACK}`,
          ...(ecs.ipv4Bits !== undefined ? [`    max-client-subnet-ipv4: ${ecs.ipv4Bits}`] : []),
        ]
      : []),
    `    outgoing-interface: ${LOOPBACK}`,
    '    do-ip6: no',
    '    local-zone: "." refuse',
    ...[domain, ...more].map((d) => `    local-zone: "${d}." transparent`),
    ...(opts.extraServerConfig ? [opts.extraServerConfig.replace(/\s+$/, '')] : []),
    ...[domain, ...more].flatMap((d) => ['stub-zone:', `    name: "${d}"`, `    stub-addr: ${LOOPBACK}@${opts.upstreamPort}`]),
    'stub-zone:',
    '    name: "."',
    `    stub-addr: ${LOOPBACK}@${opts.upstreamPort}`,
    'remote-control:',
    '    control-enable: no',
    '',
  ].join('\n');
}

/** Run `unbound -d -c FILE` (qname-minimisation on, stub-zone DOMAIN -> 127.0.0.1@upstreamPort). */
export async function startUnbound(opts: UnboundOptions): Promise<PeerHandle> {
  const bin = requireBinary('unbound');
  return launch({
    name: 'unbound',
    bin,
    dirPrefix: 'fedns-unbound-',
    port: opts.port,
    readyTimeoutMs: opts.readyTimeoutMs,
    readyDescription: 'any DNS reply',
    async prepare(port, dir) {
      const configFile = path.join(dir, 'unbound.conf');
      await writeFile(configFile, unboundConfig(opts, port, dir));
      return configFile;
    },
    args: () => ['-d', '-c', 'unbound.conf'],
    async ready(port) {
      return (await udpProbe(port, PROBE_NAME, QTYPE.A, 300, true)) !== null;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// dnsmasq (forwarder)
// ---------------------------------------------------------------------------------------------

export interface DnsmasqOptions {
  upstreamPort: number;
  domain: string;
  port?: number;
  /** Extra dnsmasq flags, e.g. ["--cache-size=0"]. */
  extraArgs?: string[];
  readyTimeoutMs?: number;
}

/** Command-line arguments startDnsmasq uses (exported for inspection). */
export function dnsmasqArgs(opts: DnsmasqOptions, port: number): string[] {
  return [
    // Debug mode: stays in the foreground, logs to stderr, writes no pid file and does NOT
    // change uid (so no --user/--pid-file needed when running as root).
    '--no-daemon',
    // Hermetic: never read /etc/dnsmasq.conf (a developer's could add upstream servers).
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    `--port=${port}`,
    `--listen-address=${LOOPBACK}`,
    '--bind-interfaces',
    `--server=/${bare(opts.domain)}/${LOOPBACK}#${opts.upstreamPort}`,
    ...(opts.extraArgs ?? []),
  ];
}

/** Run dnsmasq forwarding DOMAIN to 127.0.0.1#upstreamPort (everything else: REFUSED). */
export async function startDnsmasq(opts: DnsmasqOptions): Promise<PeerHandle> {
  const bin = requireBinary('dnsmasq');
  return launch({
    name: 'dnsmasq',
    bin,
    dirPrefix: 'fedns-dnsmasq-',
    port: opts.port,
    readyTimeoutMs: opts.readyTimeoutMs,
    readyDescription: 'any DNS reply',
    async prepare() {
      return undefined;
    },
    args: (port) => dnsmasqArgs(opts, port),
    async ready(port) {
      return (await udpProbe(port, PROBE_NAME, QTYPE.A, 300, true)) !== null;
    },
  });
}
