/**
 * Standard DNS servers (Knot DNS, NSD, BIND) run as SECONDARIES of fedns, for zone-transfer tests
 * and benchmarks.
 *
 *   const port = await freePort();                       // the secondary's port, for fedns's `notify`
 *   ... start fedns with transfer.allow [127.0.0.1], transfer.notify [127.0.0.1:port] ...
 *   const s = await startSecondary('nsd', { zone: 'example.com.', primaryPort: fednsPort, port });
 *   await s.waitForSerial(serial, 10_000);               // polls the secondary's SOA over UDP
 *   await s.stop();
 *
 * Every secondary binds 127.0.0.1 only (UDP+TCP on `port`), transfers from 127.0.0.1@primaryPort,
 * accepts NOTIFY from 127.0.0.1, lives in a scratch directory under os.tmpdir() (config, zone
 * file, logs) and is a direct child of this process; stop() kills exactly that pid (SIGTERM, then
 * SIGKILL after 5 s). With `tsig`, every request to the primary (SOA, IXFR, AXFR) is signed with
 * the key and NOTIFY must be signed with it too (Knot, NSD; BIND verifies a signed NOTIFY with a
 * key it knows).
 *
 * Answer policies are set to be as close to fedns as each server allows (see the comments in each
 * config): Knot by default; NSD `minimal-responses: yes` (no NS/glue added to positive answers,
 * but also no additional-section addresses for SRV targets / NS names); BIND
 * `minimal-responses no-auth` (additional addresses, no NS in the authority of positive answers).
 *
 * Environment: FEDNS_KEEP_PEER_DIRS=1 keeps scratch directories (their paths are printed).
 */
import { spawn } from 'node:child_process';
import { killOnExit, terminate } from './children.js';
import * as dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery, type Message } from '../../src/wire/message.js';
import type { SoaData } from '../../src/wire/records.js';
import { ROOT } from './demo.js';
import { findBinary, freePort, requirePeer } from './peers.js';

export type SecondaryKind = 'knot' | 'nsd' | 'bind';
export const SECONDARY_KINDS: readonly SecondaryKind[] = ['knot', 'nsd', 'bind'];

/** The daemon each kind runs. */
export const SECONDARY_BINARY: Readonly<Record<SecondaryKind, string>> = { knot: 'knotd', nsd: 'nsd', bind: 'named' };

/** Loud skip (or failure under FEDNS_STRICT_PEERS=1) when the kind's daemon is missing. */
export function requireSecondary(kind: SecondaryKind): boolean {
  return requirePeer(SECONDARY_BINARY[kind]);
}

export interface TsigSpec {
  /** Key name, e.g. "xfr-key." */
  name: string;
  /** Base64 secret. */
  secret: string;
}

export interface SecondaryOptions {
  /** Zone to transfer, e.g. "example.com." */
  zone: string;
  /** More zones to transfer from the same primary (fedns with mcs.enabled: the clusterset zone). */
  moreZones?: string[];
  /** fedns's DNS port on 127.0.0.1. */
  primaryPort: number;
  /** Port to listen on (UDP+TCP, 127.0.0.1); default freePort(). Give it when fedns must NOTIFY it. */
  port?: number;
  /** Sign transfer requests (and expect signed NOTIFY) with this key. */
  tsig?: TsigSpec;
  /** Extra raw lines for the server's global section (Knot `server:`, NSD `server:`, BIND `options {}`). */
  extraServerConfig?: string;
  /** Bound on start-up (process listening), default 15 s. */
  readyTimeoutMs?: number;
  /**
   * The whole configuration instead of the generated one (e.g. knotSignerConfig, derived from an
   * operator's example file); everything it writes must go under ctx.dir.
   */
  config?: (ctx: ConfigContext) => string;
}

export interface Secondary {
  readonly kind: SecondaryKind;
  /** "knotd", "nsd" or "named". */
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  /** Scratch directory (config, zone file, logs). */
  readonly dir: string;
  readonly configFile: string;
  /** Captured stdout+stderr (last 512 KiB). */
  output(): string;
  exited(): boolean;
  /** The SOA serial the secondary serves for `zone` (default: opts.zone, authoritatively), or undefined. */
  serial(timeoutMs?: number, zone?: string): Promise<number | undefined>;
  /**
   * Polls the SOA of `zone` (default opts.zone) over UDP until the secondary serves `serial` or a
   * newer one (RFC 1982); resolves with the serial it serves. Rejects after `timeoutMs` (with the
   * secondary's output) or when it exits.
   */
  waitForSerial(serial: number, timeoutMs: number, pollMs?: number, zone?: string): Promise<number>;
  /** SIGTERM (SIGKILL after 5 s), wait for exit, remove the scratch directory. Idempotent. */
  stop(): Promise<void>;
}

const LOOPBACK = '127.0.0.1';
const OUTPUT_LIMIT = 512 * 1024;

function bare(name: string): string {
  return name.replace(/\.+$/, '');
}

function fqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

/** Every zone the secondary transfers, with its file name (the first one's is zone.db). */
function zonesOf(opts: SecondaryOptions): { zone: string; file: string }[] {
  return [opts.zone, ...(opts.moreZones ?? [])].map((zone, i) => ({ zone, file: i === 0 ? 'zone.db' : `zone${i + 1}.db` }));
}

/** RFC 1982: a < b. */
export function serialLess(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

// ---------------------------------------------------------------------------------------------
// A tiny UDP client (loopback only)
// ---------------------------------------------------------------------------------------------

/** One UDP query to 127.0.0.1@port; the decoded reply, or null on timeout. */
export function udpQuery(port: number, name: string, qtype: number, timeoutMs = 500): Promise<Message | null> {
  return new Promise((resolve) => {
    const id = Math.floor(Math.random() * 0x10000);
    const sock = dgram.createSocket('udp4');
    let done = false;
    const finish = (m: Message | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        /* closed */
      }
      resolve(m);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.on('error', () => finish(null));
    sock.on('message', (buf, rinfo) => {
      if (rinfo.address !== LOOPBACK || rinfo.port !== port) return;
      try {
        const m = decodeMessage(buf);
        if (m.id === id && m.qr) finish(m);
      } catch {
        /* not for us */
      }
    });
    sock.bind(0, LOOPBACK, () => {
      sock.connect(port, LOOPBACK, (err?: Error) => {
        if (err) return finish(null);
        sock.send(encodeQuery(name, qtype, { id }), (e) => e && finish(null));
      });
    });
  });
}

/** SOA serial served authoritatively (NOERROR, AA) by 127.0.0.1@port for `zone`, else undefined. */
export async function soaSerial(port: number, zone: string, timeoutMs = 500): Promise<number | undefined> {
  const m = await udpQuery(port, fqdn(zone), RRType.SOA, timeoutMs);
  if (!m || m.rcode !== 0 || !m.aa) return undefined;
  const soa = m.answers.find((r) => r.type === RRType.SOA);
  return soa ? (soa.data as SoaData).serial : undefined;
}

// ---------------------------------------------------------------------------------------------
// Configs
// ---------------------------------------------------------------------------------------------

export interface ConfigContext {
  /** Scratch directory (it has an empty db/ subdirectory). */
  dir: string;
  port: number;
  opts: SecondaryOptions;
}

/** Knot DNS 3.x: `master:` remote (3.2 spelling), notify ACL, zone kept in memory + journal. */
export function knotSecondaryConfig({ dir, port, opts }: ConfigContext): string {
  const k = opts.tsig;
  return [
    'server:',
    `    rundir: "${dir}"`,
    `    listen: ${LOOPBACK}@${port}`,
    '    udp-workers: 1',
    '    tcp-workers: 1',
    '    background-workers: 1',
    ...(opts.extraServerConfig ? [opts.extraServerConfig.replace(/\s+$/, '')] : []),
    'log:',
    '  - target: stderr',
    '    any: info',
    'database:',
    `    storage: "${dir}/db"`,
    'control:',
    `    listen: "${dir}/knot.sock"`,
    ...(k ? ['key:', `  - id: ${fqdn(k.name)}`, '    algorithm: hmac-sha256', `    secret: ${k.secret}`] : []),
    'remote:',
    '  - id: primary',
    `    address: ${LOOPBACK}@${opts.primaryPort}`,
    ...(k ? [`    key: ${fqdn(k.name)}`] : []),
    'acl:',
    '  - id: notify-from-primary',
    `    address: ${LOOPBACK}`,
    '    action: notify',
    ...(k ? [`    key: ${fqdn(k.name)}`] : []),
    'zone:',
    ...zonesOf(opts).flatMap(({ zone, file }) => [
      `  - domain: ${fqdn(zone)}`,
      '    master: primary',
      '    acl: notify-from-primary',
      `    file: "${dir}/${file}"`,
      // No zone file is written; IXFR changesets go to the journal under database.storage (which
      // must exist: otherwise "failed to store changes (not exists)" and a fallback to AXFR).
      '    zonefile-sync: -1',
    ]),
    '',
  ].join('\n');
}

/** The operators' example of Knot as the DNSSEC signer of the fedns zone (README: DNSSEC). */
export const KNOT_SIGNER_EXAMPLE = join(ROOT, 'config', 'examples', 'knot-signer.conf');

/**
 * config/examples/knot-signer.conf with loopback addresses, the test's ports and the scratch
 * directory in place of its deployment values (and logs on stderr); with `tsig` (named xfr-key.),
 * its commented-out TSIG lines uncommented. Everything else is the example as shipped. Throws when
 * a value to replace is not found exactly once (the example changed).
 */
export function knotSignerConfig({ dir, port, opts }: ConfigContext): string {
  let text = readFileSync(KNOT_SIGNER_EXAMPLE, 'utf8');
  const put = (from: string, to: string) => {
    const n = text.split(from).length - 1;
    if (n !== 1) throw new Error(`${KNOT_SIGNER_EXAMPLE}: expected "${from}" once, found it ${n} times; update knotSignerConfig()`);
    text = text.replace(from, () => to);
  };
  put('rundir: "/run/knot"', `rundir: "${dir}"`);
  put('listen: [ 0.0.0.0@53, ::@53 ]', `listen: ${LOOPBACK}@${port}`);
  put('target: syslog', 'target: stderr');
  put('storage: "/var/lib/knot"', `storage: "${dir}/db"`);
  put('address: 192.0.2.53@53', `address: ${LOOPBACK}@${opts.primaryPort}`);
  put('address: 192.0.2.53\n', `address: ${LOOPBACK}\n`);
  put('domain: example.com.', `domain: ${fqdn(opts.zone)}`);
  if (opts.tsig) {
    // The example's own commented-out TSIG lines, uncommented as its comment tells operators to.
    if (fqdn(opts.tsig.name) !== 'xfr-key.') throw new Error('knotSignerConfig: the example names its key "xfr-key."');
    put('#key:\n#  - id: xfr-key.\n#    algorithm: hmac-sha256\n#    secret: "base64 secret, as in fedns.yaml"\n', `key:\n  - id: xfr-key.\n    algorithm: hmac-sha256\n    secret: "${opts.tsig.secret}"\n`);
    put('action: notify\n#    key: xfr-key.\n', 'action: notify\n    key: xfr-key.\n');
    put('#    key: xfr-key.\n', '    key: xfr-key.\n');
  }
  if (opts.extraServerConfig) throw new Error('knotSignerConfig: extraServerConfig is not supported');
  return text;
}

/** NSD 4.x, foreground (-d), no privilege drop, no chroot, no database, logs on stderr. */
export function nsdSecondaryConfig({ dir, port, opts }: ConfigContext): string {
  const k = opts.tsig;
  const keyName = k ? fqdn(k.name) : 'NOKEY';
  return [
    'server:',
    `    ip-address: ${LOOPBACK}@${port}`,
    `    port: ${port}`,
    '    do-ip4: yes',
    '    do-ip6: no',
    '    server-count: 1',
    '    username: ""',
    '    chroot: ""',
    `    zonesdir: "${dir}"`,
    '    database: ""',
    `    pidfile: "${dir}/nsd.pid"`,
    `    xfrdfile: "${dir}/xfrd.state"`,
    `    zonelistfile: "${dir}/zone.list"`,
    `    xfrdir: "${dir}"`,
    '    verbosity: 2',
    '    rrl-ratelimit: 0',
    // NSD reloads zones at most once a second by default, which alone holds a change back for up
    // to a second when changes come faster than that; a secondary kept current by NOTIFY wants 0.
    '    xfrd-reload-timeout: 0',
    // "no" would add the zone's NS RRset (authority) and glue (additional) to every positive answer,
    // which fedns (like Knot) does not; "yes" also leaves out additional addresses for SRV targets.
    '    minimal-responses: yes',
    ...(opts.extraServerConfig ? [opts.extraServerConfig.replace(/\s+$/, '')] : []),
    'remote-control:',
    '    control-enable: no',
    ...(k ? ['key:', `    name: "${fqdn(k.name)}"`, '    algorithm: hmac-sha256', `    secret: "${k.secret}"`] : []),
    ...zonesOf(opts).flatMap(({ zone, file }) => [
      'zone:',
      `    name: "${bare(zone)}"`,
      `    zonefile: "${file}"`,
      `    request-xfr: ${LOOPBACK}@${opts.primaryPort} ${keyName}`,
      `    allow-notify: ${LOOPBACK} ${keyName}`,
    ]),
    '',
  ].join('\n');
}

/** BIND 9, foreground (-g: logs on stderr), authoritative only, never sends NOTIFY itself. */
export function bindSecondaryConfig({ dir, port, opts }: ConfigContext): string {
  const k = opts.tsig;
  return [
    'options {',
    `    directory "${dir}";`,
    `    pid-file "${dir}/named.pid";`,
    `    session-keyfile "${dir}/session.key";`,
    `    managed-keys-directory "${dir}";`,
    `    listen-on port ${port} { ${LOOPBACK}; };`,
    '    listen-on-v6 { none; };',
    '    recursion no;',
    '    allow-query { any; };',
    // A secondary would NOTIFY the zone's NS (ns1.example.com = 127.0.0.1 port 53): never.
    '    notify no;',
    '    dnssec-validation no;',
    // Like Knot and fedns: additional addresses for SRV/NS targets, no NS RRset in the authority
    // section of positive answers.
    '    minimal-responses no-auth;',
    '    querylog no;',
    '    masterfile-format text;',
    ...(opts.extraServerConfig ? [opts.extraServerConfig.replace(/\s+$/, '')] : []),
    '};',
    'controls { };',
    ...(k ? [`key "${fqdn(k.name)}" {`, '    algorithm hmac-sha256;', `    secret "${k.secret}";`, '};'] : []),
    ...zonesOf(opts).flatMap(({ zone, file }) => [
      `zone "${bare(zone)}" {`,
      '    type secondary;',
      `    primaries { ${LOOPBACK} port ${opts.primaryPort}${k ? ` key "${fqdn(k.name)}"` : ''}; };`,
      `    allow-notify { ${LOOPBACK}; };`,
      `    file "${file}";`,
      '};',
    ]),
    '',
  ].join('\n');
}

interface KindSpec {
  configName: string;
  config: (ctx: ConfigContext) => string;
  args: (configFile: string) => string[];
}

const SPECS: Record<SecondaryKind, KindSpec> = {
  knot: { configName: 'knot.conf', config: knotSecondaryConfig, args: (f) => ['-c', f] },
  nsd: { configName: 'nsd.conf', config: nsdSecondaryConfig, args: (f) => ['-d', '-c', f] },
  // -n 1: one worker thread is plenty here (two-core machines run fedns and the test too).
  bind: { configName: 'named.conf', config: bindSecondaryConfig, args: (f) => ['-g', '-n', '1', '-c', f] },
};

// ---------------------------------------------------------------------------------------------
// Process handling
// ---------------------------------------------------------------------------------------------


function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function tail(text: string, lines = 60): string {
  const t = text.trim().split('\n');
  return t.slice(-lines).map((l) => `    | ${l}`).join('\n') || '    | (no output)';
}

/** Starts a secondary of `kind` and waits until it answers on its port (not for the zone). */
export async function startSecondary(kind: SecondaryKind, opts: SecondaryOptions): Promise<Secondary> {
  const binName = SECONDARY_BINARY[kind];
  const bin = findBinary(binName);
  if (!bin) throw new Error(`${binName} is not installed; guard the test with requireSecondary('${kind}')`);
  const spec = SPECS[kind];
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), `fedns-${kind}-secondary-`));
  mkdirSync(join(dir, 'db'));
  const configFile = join(dir, spec.configName);
  writeFileSync(configFile, (opts.config ?? spec.config)({ dir, port, opts }));
  const child = spawn(bin, spec.args(configFile), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  killOnExit(child);
  let out = '';
  const append = (b: Buffer) => {
    out += b.toString('utf8');
    if (out.length > OUTPUT_LIMIT) out = out.slice(out.length - OUTPUT_LIMIT);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('error', (e) => {
      append(Buffer.from(`\n[spawn error] ${e.message}\n`));
      exit ??= { code: null, signal: null };
      resolve();
    });
    child.once('close', (code, signal) => {
      exit = { code, signal };
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await terminate(child, exited, () => exit !== undefined);
      if (process.env.FEDNS_KEEP_PEER_DIRS === '1') process.stderr.write(`[fedns secondaries] keeping ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const describe = () => `${binName} (${kind} secondary of 127.0.0.1@${opts.primaryPort}) on ${LOOPBACK}@${port}, config ${configFile}`;
  const serial = (timeoutMs = 500, zone = opts.zone) => soaSerial(port, zone, timeoutMs);
  const waitForSerial = async (want: number, timeoutMs: number, pollMs = 20, zone = opts.zone): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    let last: number | undefined;
    for (;;) {
      if (exit) throw new Error(`${describe()} exited (code ${exit.code}, signal ${exit.signal}) waiting for serial ${want} of ${zone}\n${tail(out)}`);
      last = await serial(Math.min(500, Math.max(50, deadline - Date.now())), zone);
      if (last !== undefined && (last === want || serialLess(want, last))) return last;
      if (Date.now() >= deadline) {
        throw new Error(`${describe()} does not serve serial ${want} of ${zone} after ${timeoutMs} ms (serves ${last ?? 'nothing'})\n${tail(out)}`);
      }
      await sleep(pollMs);
    }
  };

  // Ready = answers anything on its port (it may not have the zone yet).
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 15_000);
  try {
    for (;;) {
      if (exit) throw new Error(`${describe()} exited (code ${exit.code}, signal ${exit.signal}) during start-up\n${tail(out)}`);
      if ((await udpQuery(port, 'fedns-readiness-probe.invalid.', RRType.SOA, 200)) !== null) break;
      if (Date.now() > deadline) throw new Error(`${describe()} did not start answering\n${tail(out)}`);
      await sleep(50);
    }
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    kind,
    name: binName,
    port,
    pid: child.pid!,
    dir,
    configFile,
    output: () => out,
    exited: () => exit !== undefined,
    serial,
    waitForSerial,
    stop,
  };
}

export const startKnotSecondary = (opts: SecondaryOptions) => startSecondary('knot', opts);
export const startNsdSecondary = (opts: SecondaryOptions) => startSecondary('nsd', opts);
export const startBindSecondary = (opts: SecondaryOptions) => startSecondary('bind', opts);
