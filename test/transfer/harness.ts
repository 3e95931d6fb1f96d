/**
 * Shared pieces of the zone-transfer tests: an in-process fedns primary (its logs captured, its
 * metrics and zone at hand), member-cluster data made programmatically (for zones of any size),
 * and a TCP client for AXFR/IXFR that can read slowly and checks the message stream.
 * Everything listens on and talks to 127.0.0.1 only.
 */
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { Fedns } from '../../src/app.js';
import type { ClusterState } from '../../src/cluster/state.js';
import { packSlice, type SlimEndpointSlice, type SlimService } from '../../src/cluster/objects.js';
import { buildConfig } from '../../src/config/load.js';
import { RRClass, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeMessage, type Message } from '../../src/wire/message.js';
import { nameToWire } from '../../src/wire/name.js';
import { rrText, type RR, type SoaData } from '../../src/wire/records.js';
import { lastAdditionalOffset, readTsig, signRequest, HMAC_SHA256, type TsigKey } from '../../src/wire/tsig.js';

export { lastAdditionalOffset };
import { zoneRecords } from '../../src/zone/masterfile.js';
import type { ZoneSnapshot } from '../../src/zone/snapshot.js';
import { DEMO_CONFIG, ROOT } from '../support/demo.js';
import { freePort } from '../support/peers.js';
import { Waiters } from '../support/waiters.js';

export const ZONE = 'example.com.';
export const LOOPBACK = '127.0.0.1';

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

export interface LogCapture {
  readonly log: Logger;
  readonly records: Record<string, unknown>[];
  /** Records whose msg is `msg` (and, optionally, match `pred`). */
  find(msg: string, pred?: (r: Record<string, unknown>) => boolean): Record<string, unknown>[];
}

/** A pino logger that keeps every record in memory (and prints nothing). */
export function captureLogs(level = 'info'): LogCapture {
  const records: Record<string, unknown>[] = [];
  const log = pino(
    { level, base: { name: 'fedns' } },
    {
      write(line: string) {
        try {
          records.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* not JSON */
        }
      },
    },
  );
  return { log, records, find: (msg, pred) => records.filter((r) => r.msg === msg && (!pred || pred(r))) };
}

// ---------------------------------------------------------------------------------------------
// In-process primary
// ---------------------------------------------------------------------------------------------

export interface PrimaryOptions {
  /** The `transfer:` section (raw, as in YAML). */
  transfer?: Record<string, unknown>;
  /**
   * true: the demo configuration, its clusters read from a scratch copy of config/demo (edit the
   * manifests under `dir`/demo/NAME/ to change a member cluster). false (default): no configured
   * cluster; add data with addCluster()/fillCluster().
   */
  demo?: boolean;
  /** Extra top-level configuration (raw), e.g. { soa: { refresh: 60 } }. */
  extra?: Record<string, unknown>;
  logLevel?: string;
}

export interface Primary {
  readonly fedns: Fedns;
  readonly port: number;
  readonly logs: LogCapture;
  /** Scratch directory (demo manifests under demo/). */
  readonly dir: string;
  readonly zone: () => ZoneSnapshot;
  /** Every snapshot published since start, by serial (to check what a transfer should contain). */
  readonly history: Map<number, ZoneSnapshot>;
  /** The clusterset zone's snapshot (mcs.enabled), else undefined. */
  readonly clusterSetZone: () => ZoneSnapshot | undefined;
  /** fedns_zone_transfers_total{type,result}: of `zone` (a domain), else summed over both zones. */
  transfers(type: 'AXFR' | 'IXFR', result: string, zone?: string): Promise<number>;
  /** fedns_notifies_total{result}: of `zone` (a domain), else summed over both zones. */
  notifies(result: 'sent' | 'acknowledged' | 'rejected' | 'failed', zone?: string): Promise<number>;
  /** Resolves with the first log record with this msg matching `pred` (bounded wait). */
  waitForLog(msg: string, pred?: (r: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves once the zone is ready and has not changed for `quietMs`. */
  settled(quietMs?: number, timeoutMs?: number): Promise<ZoneSnapshot>;
  /** Resolves with the first published snapshot that satisfies `pred` (the current one included). */
  waitForZone(pred: (z: ZoneSnapshot) => boolean, timeoutMs?: number, what?: string): Promise<ZoneSnapshot>;
  stop(): Promise<void>;
}

export async function startPrimary(opts: PrimaryOptions = {}): Promise<Primary> {
  const dir = mkdtempSync(join(tmpdir(), 'fedns-xfr-'));
  let raw: Record<string, unknown>;
  if (opts.demo) {
    cpSync(join(ROOT, 'config', 'demo'), join(dir, 'demo'), { recursive: true });
    raw = parseYaml(readFileSync(DEMO_CONFIG, 'utf8')) as Record<string, unknown>;
  } else {
    raw = { domain: ZONE, federation: 'fed', clusters: [] };
  }
  const logs = captureLogs(opts.logLevel ?? 'info');
  const history = new Map<number, ZoneSnapshot>();
  const waiters = new Waiters();
  // A port from freePort() (below the ephemeral range, free for UDP and TCP), and a few attempts:
  // with port 0, fedns binds UDP first and TCP on the same number, which a TCP connection of
  // another process may hold (EADDRINUSE).
  let fedns: Fedns | undefined;
  for (let attempt = 1; !fedns; attempt++) {
    const config = buildConfig(
      { ...raw, ...opts.extra, listen: [`${LOOPBACK}:${await freePort()}`], ops: { listen: null }, transfer: opts.transfer ?? {} },
      join(dir, 'fedns.yaml'),
      dir,
    );
    const f = new Fedns(config, logs.log);
    f.federation.on('published', (snap) => {
      history.set(snap.serial, snap);
      waiters.poke();
    });
    // The clusterset zone publishes after the federation zone: waits on it look again then.
    f.federation.on('clusterSetPublished', () => waiters.poke());
    history.clear();
    history.set(f.federation.snapshot.serial, f.federation.snapshot);
    try {
      await f.start();
      fedns = f;
    } catch (e) {
      await f.stop(0);
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
  const addr = fedns.dns.addresses()[0];
  const counter = async (c: typeof fedns.metrics.transfers | typeof fedns.metrics.notifies, labels: Record<string, string | undefined>) => {
    const match = (await c.get()).values.filter((x) => Object.entries(labels).every(([k, val]) => val === undefined || (x.labels as Record<string, unknown>)[k] === val));
    return match.reduce((sum, v) => sum + v.value, 0);
  };
  const zone = () => fedns.federation.snapshot;
  const waitForZone: Primary['waitForZone'] = (pred, timeoutMs = 10_000, what = 'a matching zone') =>
    waiters.until(
      () => (pred(zone()) ? zone() : undefined),
      timeoutMs,
      () => new Error(`fedns: no ${what} within ${timeoutMs} ms (serial ${zone().serial}, ready ${zone().ready})`),
    );
  let stopped: Promise<void> | undefined;
  return {
    fedns,
    port: addr.port,
    logs,
    dir,
    zone,
    history,
    clusterSetZone: () => fedns.federation.clusterSetSnapshot,
    transfers: (type, result, zone) => counter(fedns.metrics.transfers, { type, result, zone }),
    notifies: (result, zone) => counter(fedns.metrics.notifies, { result, zone }),
    async settled(quietMs = 300, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let last = zone();
      let since = Date.now();
      for (;;) {
        await sleep(25);
        const z = zone();
        if (z !== last) {
          last = z;
          since = Date.now();
        }
        if (z.ready && Date.now() - since >= quietMs) return z;
        if (Date.now() > deadline) throw new Error(`fedns zone did not settle within ${timeoutMs} ms`);
      }
    },
    waitForZone,
    async waitForLog(msg, pred, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = logs.find(msg, pred)[0];
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`fedns logged no matching "${msg}" within ${timeoutMs} ms; it logged: ${JSON.stringify(logs.find(msg))}`);
        await sleep(10);
      }
    },
    stop() {
      stopped ??= (async () => {
        await fedns.stop(200);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** shop/api in the demo's cluster alpha, as list items to append to its services.yaml: a Service and its EndpointSlice. */
export const API_SERVICE = `
  - apiVersion: v1
    kind: Service
    metadata: { name: api, namespace: shop }
    spec:
      type: LoadBalancer
      ports: [{ name: grpc, port: 9443, protocol: TCP }]
    status:
      loadBalancer: { ingress: [{ ip: 192.0.2.60 }] }
  - apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: api-k2j4h
      namespace: shop
      labels: { kubernetes.io/service-name: api }
    addressType: IPv4
    ports: [{ name: grpc, port: 9443, protocol: TCP }]
    endpoints:
      - addresses: [10.1.3.3]
        conditions: { ready: true }
        zone: us-east-a
`;

/** Writes a file atomically (temp + rename), so a watcher never reads half of it. */
export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

// ---------------------------------------------------------------------------------------------
// Member-cluster data made programmatically
// ---------------------------------------------------------------------------------------------

/** Adds a live member cluster (region r1, zone z1) to the primary's federation. */
export function addCluster(p: Primary, name = 'big', region = 'r1', zone = 'z1'): ClusterState {
  return p.fedns.federation.addCluster({ name, region, zones: [zone], addressMode: 'loadBalancer', gracePeriod: 300 });
}

/** A distinct IPv4 address per index (10.0.0.0/8, data only). */
export function ipFor(i: number, salt = 0): string {
  const n = (i + salt * 5_000_000) % 16_000_000;
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${(n & 255)}`;
}

export function service(ns: string, name: string, ip: string): SlimService {
  return { namespace: ns, name, headless: false, ports: [{ name: 'http', port: 80, protocol: 'tcp' }], lbAddresses: [ip], lbHostnames: [], labels: {} };
}

export function slice(ns: string, name: string, zone: string, ip: string): SlimEndpointSlice {
  return packSlice({
    namespace: ns,
    name: `${name}-s`,
    service: name,
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'tcp' }],
    endpoints: [{ addresses: [ip.replace(/^10\./, '172.')], ready: true, zone }],
  });
}

/**
 * Records one service gives in a one-cluster, one-region, one-zone federation: A at the short,
 * global, regional and zonal names, SRV at _http._tcp of the short and global names.
 */
export const RECORDS_PER_SERVICE = 6;

/** Upserts services svc<from>..svc<to-1> (namespace ns<i % 50>) and flushes once. */
export function fillCluster(c: ClusterState, from: number, to: number, salt = 0, zone = 'z1'): void {
  for (let i = from; i < to; i++) {
    const ns = `ns${i % 50}`;
    const name = `svc${i}`;
    const ip = ipFor(i, salt);
    c.upsert('Service', service(ns, name, ip));
    c.upsert('EndpointSlice', slice(ns, name, zone, ip));
  }
  c.markLive();
  c.flush();
}

/** Changes the address of service i (a new publish with removed + added records). */
export function readdress(c: ClusterState, i: number, salt: number, zone = 'z1'): void {
  const ns = `ns${i % 50}`;
  const ip = ipFor(i, salt);
  c.upsert('Service', service(ns, `svc${i}`, ip));
  c.upsert('EndpointSlice', slice(ns, `svc${i}`, zone, ip));
  c.flush();
}

/** Removes service i. */
export function removeService(c: ClusterState, i: number): void {
  const ns = `ns${i % 50}`;
  c.remove('Service', ns, `svc${i}`);
  c.remove('EndpointSlice', ns, `svc${i}-s`);
  c.flush();
}

// ---------------------------------------------------------------------------------------------
// Zone comparison
// ---------------------------------------------------------------------------------------------

/** Canonical text of a record (lowercase owner/rdata names; TTL kept). */
export function rrLine(rr: RR): string {
  return rrText({ ...rr, class: undefined }).toLowerCase();
}

/**
 * Every record of a snapshot (SOA included once), as sorted lines. Walks the names itself rather
 * than calling zoneRecords() (whose canonical sort is slow for 100,000 records).
 */
export function zoneLines(z: ZoneSnapshot): string[] {
  const out = [rrLine(z.soa)];
  for (const n of z.names.values()) {
    if (n.isEmptyNonTerminal) continue;
    for (const rr of n.records()) if (rr.type !== RRType.SOA) out.push(rrLine(rr));
  }
  return out.sort();
}

/** The records of a snapshot in `fedns zone` order (SOA first, canonical name order). */
export { zoneRecords };

export function soaSerialOf(rr: RR | undefined): number | undefined {
  return rr && rr.type === RRType.SOA ? (rr.data as SoaData).serial : undefined;
}

// ---------------------------------------------------------------------------------------------
// TCP zone-transfer client
// ---------------------------------------------------------------------------------------------

export interface XfrOptions {
  zone?: string;
  /** IXFR: the client's serial (sent as the SOA in the authority section). */
  serial?: number;
  /** IXFR: the owner of that SOA (default: the zone). */
  soaOwner?: string;
  /** Sign the request with this key; responses are then verified (RFC 8945 4.3, 5.3.1). */
  key?: TsigKey;
  /** Pause reading for this long after every chunk received (a slow secondary). */
  readDelayMs?: number;
  /** Called after each complete message. */
  onMessage?: (m: Message, index: number) => void;
  timeoutMs?: number;
  /** The query id (default random). */
  id?: number;
  /** Ask with EDNS (an OPT record, UDP size 1232). */
  edns?: boolean;
}

export interface XfrResult {
  /** Rcode of the first message. */
  rcode: number;
  messages: Message[];
  /** Answer records of every message in order (TSIG excluded). */
  records: RR[];
  /** Bytes received, length prefixes included. */
  bytes: number;
  ms: number;
  /** Every response message carried a TSIG that verified (only with `key`). */
  tsigVerified?: boolean;
  /** Why not, when tsigVerified is false. */
  tsigProblem?: string;
  /** MAC of the signed request (only with `key`). */
  requestMac?: Buffer;
  /** Wire messages. */
  raw: Buffer[];
}

export function xfrQuery(qtype: 'AXFR' | 'IXFR', opts: XfrOptions): Buffer {
  const zone = opts.zone ?? ZONE;
  const soa: RR | undefined =
    opts.serial !== undefined
      ? { name: opts.soaOwner ?? zone, type: RRType.SOA, ttl: 0, data: { mname: `ns1.${zone}`, rname: `hostmaster.${zone}`, serial: opts.serial, refresh: 0, retry: 0, expire: 0, minimum: 0 } }
      : undefined;
  let q = encodeMessage({
    id: opts.id ?? Math.floor(Math.random() * 0x10000),
    questions: [{ name: zone, type: qtype === 'AXFR' ? RRType.AXFR : RRType.IXFR, class: RRClass.IN }],
    authorities: soa ? [soa] : [],
    edns: opts.edns ? { udpSize: 1232 } : undefined,
  });
  if (opts.key) q = signRequest(q, opts.key);
  return q;
}

/** A TSIG-signed message with its MAC replaced by `mac` (MAC size and RDLENGTH follow). */
export function withTsigMac(signed: Buffer, mac: Buffer): Buffer {
  const t = readTsig(signed, lastAdditionalOffset(signed));
  const macAt = signed.length - 6 - t.other.length - t.mac.length;
  const out = Buffer.concat([signed.subarray(0, macAt - 2), u16(mac.length), mac, signed.subarray(macAt + t.mac.length)]);
  const rdlenAt = t.offset + nameToWire(t.keyName).length + 8;
  out.writeUInt16BE(out.readUInt16BE(rdlenAt) + mac.length - t.mac.length, rdlenAt);
  return out;
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function time48(t: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(Math.floor(t / 2 ** 32), 0);
  b.writeUInt32BE(t % 2 ** 32, 2);
  return b;
}

/**
 * Verifies the TSIGs of a response stream, written from RFC 8945 independently of fedns's signer:
 * the first MAC covers the request MAC, the message and all TSIG variables; every later one the
 * previous MAC, the message and the timers only. Returns a problem, or undefined when all verify.
 */
export function verifyResponseTsig(requestMac: Buffer, raw: Buffer[], key: TsigKey, checkTime = true): string | undefined {
  let prev = requestMac;
  for (let i = 0; i < raw.length; i++) {
    const msg = raw[i];
    const off = lastAdditionalOffset(msg);
    if (off < 0) return `message ${i} has no additional record (no TSIG)`;
    let t;
    try {
      t = readTsig(msg, off);
    } catch (e) {
      return `message ${i}: ${(e as Error).message}`;
    }
    if (t.keyName !== key.name) return `message ${i}: signed with ${t.keyName}`;
    const unsigned = Buffer.from(msg.subarray(0, off));
    unsigned.writeUInt16BE(t.originalId, 0);
    unsigned.writeUInt16BE(unsigned.readUInt16BE(10) - 1, 10);
    const vars =
      i === 0
        ? Buffer.concat([nameToWire(key.name), u16(RRClass.ANY), Buffer.alloc(4), nameToWire(key.algorithm), time48(t.timeSigned), u16(t.fudge), u16(t.error), u16(t.other.length), t.other])
        : Buffer.concat([time48(t.timeSigned), u16(t.fudge)]);
    const mac = createHmac('sha256', key.secret).update(Buffer.concat([u16(prev.length), prev, unsigned, vars])).digest();
    if (!mac.equals(t.mac)) return `message ${i}: MAC does not verify`;
    if (checkTime && Math.abs(Date.now() / 1000 - t.timeSigned) > t.fudge) return `message ${i}: time outside fudge`;
    prev = t.mac;
  }
  return undefined;
}

export function tsigKey(name: string, secretBase64: string): TsigKey {
  return { name, algorithm: HMAC_SHA256, secret: Buffer.from(secretBase64, 'base64') };
}

/** Is the record stream complete? (RFC 5936 AXFR; RFC 1995 IXFR: single SOA, AXFR-style, incremental) */
export function transferComplete(records: RR[], qtype: 'AXFR' | 'IXFR', clientSerial?: number): boolean {
  if (records.length === 0) return false;
  const first = soaSerialOf(records[0]);
  if (first === undefined) return true; // malformed: stop and let the caller look
  // IXFR answered with the server's SOA alone: the client is up to date (or ahead).
  if (qtype === 'IXFR' && records.length === 1 && clientSerial !== undefined && !serialLess(clientSerial, first)) return true;
  if (records.length < 2) return false;
  if (qtype === 'AXFR' || records[1].type !== RRType.SOA) {
    return records.length >= 2 && records[records.length - 1].type === RRType.SOA && records.filter((r) => r.type === RRType.SOA).length >= 2;
  }
  return parseIncremental(records).complete;
}

export interface Delta {
  from: number;
  to: number;
  removed: RR[];
  added: RR[];
}

/** Parses an incremental IXFR answer: SOA(new) [SOA(old) removed.. SOA(next) added..]+ SOA(new). */
export function parseIncremental(records: RR[]): { serial: number; deltas: Delta[]; complete: boolean; trailing: number } {
  const serial = soaSerialOf(records[0]) ?? -1;
  const deltas: Delta[] = [];
  let i = 1;
  for (;;) {
    const from = soaSerialOf(records[i]);
    if (from === undefined) return { serial, deltas, complete: false, trailing: records.length - i };
    if (from === serial && i === records.length - 1) return { serial, deltas, complete: true, trailing: 0 };
    const d: Delta = { from, to: -1, removed: [], added: [] };
    i++;
    while (i < records.length && records[i].type !== RRType.SOA) d.removed.push(records[i++]);
    const to = soaSerialOf(records[i]);
    if (to === undefined) return { serial, deltas, complete: false, trailing: 0 };
    d.to = to;
    i++;
    while (i < records.length && records[i].type !== RRType.SOA) d.added.push(records[i++]);
    deltas.push(d);
    if (i >= records.length) return { serial, deltas, complete: false, trailing: 0 };
  }
}

export function serialLess(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

/** AXFR/IXFR over TCP from 127.0.0.1@port; resolves when the transfer is complete (or failed). */
export function tcpTransfer(port: number, qtype: 'AXFR' | 'IXFR', opts: XfrOptions = {}): Promise<XfrResult> {
  const query = xfrQuery(qtype, opts);
  const requestMac = opts.key ? readTsig(query, lastAdditionalOffset(query)).mac : undefined;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const sock = connect({ host: LOOPBACK, port });
    const messages: Message[] = [];
    const raw: Buffer[] = [];
    const records: RR[] = [];
    let bytes = 0;
    let pending: Buffer = Buffer.alloc(0);
    let finished = false;
    const timer = setTimeout(() => fail(new Error(`transfer timed out after ${opts.timeoutMs ?? 60_000} ms (${messages.length} messages, ${records.length} records)`)), opts.timeoutMs ?? 60_000);
    const done = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      const result: XfrResult = { rcode: messages[0]?.rcode ?? -1, messages, records, bytes, ms: performance.now() - started, raw };
      if (opts.key && requestMac) {
        result.requestMac = requestMac;
        result.tsigProblem = verifyResponseTsig(requestMac, raw, opts.key);
        result.tsigVerified = result.tsigProblem === undefined;
      }
      resolve(result);
    };
    const fail = (e: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    sock.on('connect', () => {
      const frame = Buffer.concat([u16(query.length), query]);
      sock.write(frame);
    });
    sock.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const buf = Buffer.from(pending.subarray(2, 2 + len));
        pending = pending.subarray(2 + len);
        let m: Message;
        try {
          m = decodeMessage(buf);
        } catch (e) {
          return fail(new Error(`message ${messages.length}: ${(e as Error).message}`));
        }
        raw.push(buf);
        messages.push(m);
        records.push(...m.answers);
        opts.onMessage?.(m, messages.length - 1);
        if (m.rcode !== 0 || transferComplete(records, qtype, opts.serial)) return done();
      }
      if (opts.readDelayMs) {
        sock.pause();
        setTimeout(() => sock.resume(), opts.readDelayMs);
      }
    });
    sock.on('error', fail);
    sock.on('close', () => (finished ? undefined : messages.length ? done() : fail(new Error('connection closed without an answer'))));
  });
}

/** Sends one raw message over UDP to 127.0.0.1@port; the raw reply, or null on timeout. */
export function udpExchange(port: number, msg: Buffer, timeoutMs = 2000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    let done = false;
    const finish = (b: Buffer | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      resolve(b);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.on('error', () => finish(null));
    sock.on('message', (b, rinfo) => {
      if (rinfo.port === port && b.length >= 2 && b.readUInt16BE(0) === msg.readUInt16BE(0)) finish(b);
    });
    sock.bind(0, LOOPBACK, () => sock.send(msg, port, LOOPBACK));
  });
}

/** Sends one raw message over TCP and returns the first framed reply (for error answers). */
export function tcpExchange(port: number, msg: Buffer, timeoutMs = 5000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const sock = connect({ host: LOOPBACK, port });
    let pending: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(null);
    }, timeoutMs);
    sock.on('connect', () => sock.write(Buffer.concat([u16(msg.length), msg])));
    sock.on('data', (c: Buffer) => {
      pending = Buffer.concat([pending, c]);
      if (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        clearTimeout(timer);
        sock.destroy();
        resolve(Buffer.from(pending.subarray(2, 2 + pending.readUInt16BE(0))));
      }
    });
    sock.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

/**
 * Sends several queries at once on one TCP connection and collects the response messages in
 * arrival order until `done(messages)` says so (or the timeout).
 */
export function tcpPipeline(port: number, queries: Buffer[], done: (messages: Message[]) => boolean, timeoutMs = 60_000): Promise<Message[]> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: LOOPBACK, port });
    const messages: Message[] = [];
    let pending: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`pipeline: timed out with ${messages.length} messages`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(Buffer.concat(queries.flatMap((q) => [u16(q.length), q]))));
    sock.on('data', (c: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, c]) : c;
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        messages.push(decodeMessage(Buffer.from(pending.subarray(2, 2 + pending.readUInt16BE(0)))));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
      if (done(messages)) {
        clearTimeout(timer);
        sock.destroy();
        resolve(messages);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
