// Scale-out through standard secondaries, measured (issue 5):
//  1. Propagation: from a member-cluster change (a manifest file rewritten) to each secondary
//     (Knot, NSD, BIND - whichever are installed) answering with it: p50/p90/p99/max over N
//     changes. fedns runs as `fedns serve` (a child process) with the secondaries in its
//     transfer.notify; after each change every server is polled over UDP (every POLL ms) for the
//     changed name until it returns the new address. fedns itself is measured the same way.
//  2. Full transfer: AXFR of a 10,000- and a 100,000-record zone from an in-process fedns to a
//     lean TCP client (counts bytes and records from the headers): records, bytes, messages, ms
//     of the process's very first AXFR, of the first AXFR of a new serial (orders the zone, then
//     encodes) and of repeats (median of 5), and the slowest answer to SOA queries sent meanwhile
//     from another thread (how long the transfer holds up ordinary queries).
// Everything runs on 127.0.0.1; every process started is stopped at the end.
// usage: npm run build && node dist/benchmarks/transfer.js [changes=100] [--skip-propagation] [--skip-axfr]
//   env: NOTIFY_DELAY (s, default 0.2 = fedns default), POLL_MS (default 5), GAP_MS (default 500: pause
//        between one change reaching every server and the next change)
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { Fedns } from '../src/app.js';
import { packSlice } from '../src/cluster/objects.js';
import { buildConfig } from '../src/config/load.js';
import { RRClass, RRType } from '../src/wire/constants.js';
import { decodeMessage, encodeMessage, encodeQuery } from '../src/wire/message.js';
import { freePort } from '../test/support/peers.js';
import { requireSecondary, SECONDARY_KINDS, startSecondary, type Secondary } from '../test/support/secondaries.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const args = process.argv.slice(2);
const CHANGES = Number(args.find((a) => /^\d+$/.test(a)) ?? 100);
const NOTIFY_DELAY = Number(process.env.NOTIFY_DELAY ?? 0.2);
const POLL_MS = Number(process.env.POLL_MS ?? 5);
/** Pause after every server has the change, before the next one (plus up to 100 ms of jitter). */
const GAP_MS = Number(process.env.GAP_MS ?? 500);
const ZONE = 'example.com.';
const NAME = 'bench.default.fed.example.com.';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

// ------------------------------------------------------------------------------------------------
// 1. Propagation
// ------------------------------------------------------------------------------------------------

function manifest(items: object[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}

function service(ns: string, name: string, ip: string): object[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: ns },
      spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
      status: { loadBalancer: { ingress: [{ ip }] } },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-x`, namespace: ns, labels: { 'kubernetes.io/service-name': name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: true }, zone: 'z1' }],
    },
  ];
}

function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** 198.18.0.0/15 (benchmarking range, data only): a fresh address per change. */
const benchIp = (i: number) => `198.${18 + ((i >> 16) & 1)}.${(i >> 8) & 255}.${i & 255}`;

interface Target {
  label: string;
  port: number;
}

/**
 * Polls every target (one UDP socket, a query per still-waiting target every POLL_MS) until each
 * answers NAME A with `ip`; ms from `t0` per target (undefined after timeoutMs).
 */
async function waitForAnswer(targets: Target[], ip: string, t0: number, timeoutMs: number): Promise<(number | undefined)[]> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const result: (number | undefined)[] = targets.map(() => undefined);
  const byPort = new Map(targets.map((t, i) => [t.port, i]));
  let waiting = targets.length;
  sock.on('message', (buf, rinfo) => {
    const i = byPort.get(rinfo.port);
    if (i === undefined || result[i] !== undefined) return;
    try {
      const m = decodeMessage(buf);
      if (m.answers.some((a) => a.type === RRType.A && a.data === ip)) {
        result[i] = performance.now() - t0;
        waiting--;
      }
    } catch {
      /* ignore */
    }
  });
  const deadline = t0 + timeoutMs;
  let id = 1;
  while (waiting > 0 && performance.now() < deadline) {
    targets.forEach((t, i) => {
      if (result[i] === undefined) sock.send(encodeQuery(NAME, RRType.A, { id: id++ & 0xffff }), t.port, '127.0.0.1');
    });
    await sleep(POLL_MS);
  }
  sock.close();
  return result;
}

function startFednsProcess(config: string): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let port = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fedns did not start:\n${err}`));
    }, 15_000);
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      if (err.length > 1 << 20) err = err.slice(-(1 << 19));
      for (const line of err.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const r = JSON.parse(line) as Record<string, unknown>;
          if (r.msg === 'listening on UDP and TCP') port = Number(/:(\d+)$/.exec(String(r.address))![1]);
          if (port && r.msg === 'zone published') {
            clearTimeout(timer);
            resolvePromise({ child, port, stderr: () => err });
            return;
          }
        } catch {
          /* partial line */
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`fedns exited (${code}):\n${err}`)));
  });
}

async function propagation(): Promise<void> {
  const kinds = SECONDARY_KINDS.filter((k) => requireSecondary(k));
  if (kinds.length === 0) {
    console.log('propagation: no secondary installed (knot, nsd, bind9), skipped');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'fedns-bench-xfr-'));
  const cluster = join(dir, 'c1');
  const ports = new Map<string, number>();
  for (const k of kinds) ports.set(k, await freePort());
  const secondaries: Secondary[] = [];
  let fedns: { child: ChildProcess; port: number; stderr: () => string } | undefined;
  try {
    // A member cluster of 200 services plus the one that changes.
    const base: object[] = [];
    for (let i = 0; i < 200; i++) base.push(...service(`ns${i % 10}`, `svc${i}`, `198.18.${200 + (i >> 8)}.${i & 255}`));
    mkdirSync(cluster);
    writeFileSync(join(cluster, 'base.json'), manifest(base));
    writeFileSync(join(cluster, 'bench.json'), manifest(service('default', 'bench', benchIp(0))));
    const config = join(dir, 'fedns.yaml');
    const writeConfig = (port: number) =>
      writeFileSync(
        config,
        [
          `domain: ${ZONE}`,
          `listen: [127.0.0.1:${port}]`,
          'ops: { listen: null }',
          'log: { level: info }',
          'transfer:',
          '  allow: [127.0.0.1]',
          `  notify: [${kinds.map((k) => `127.0.0.1:${ports.get(k)}`).join(', ')}]`,
          `  notifyDelay: ${NOTIFY_DELAY}`,
          'clusters:',
          '  - { name: c1, region: r1, zones: [z1], source: { type: files, path: c1 } }',
          '',
        ].join('\n'),
      );
    // A port free for UDP and TCP (port 0 lets the kernel pick a UDP port whose TCP twin may be taken).
    for (let attempt = 1; !fedns; attempt++) {
      writeConfig(await freePort());
      fedns = await startFednsProcess(config).catch((e: Error) => {
        if (attempt >= 3 || !/EADDRINUSE/.test(e.message)) throw e;
        return undefined;
      });
    }
    await sleep(1000); // let the first publishes settle
    for (const k of kinds) secondaries.push(await startSecondary(k, { zone: ZONE, primaryPort: fedns.port, port: ports.get(k)! }));
    // Every secondary has the zone (the current serial).
    const soa = decodeMessage(await udpAsk(fedns.port, encodeQuery(ZONE, RRType.SOA)));
    const serial = (soa.answers[0].data as { serial: number }).serial;
    for (const s of secondaries) await s.waitForSerial(serial, 30_000);

    const targets: Target[] = [{ label: 'fedns (primary)', port: fedns.port }, ...secondaries.map((s) => ({ label: `${s.name} (${s.kind})`, port: s.port }))];
    const lat: number[][] = targets.map(() => []);
    /** Per change: secondary's time minus fedns's (NOTIFY delay + SOA/IXFR round + the secondary applying it). */
    const after: number[][] = targets.map(() => []);
    const timeouts = targets.map(() => 0);
    console.log(`\n== propagation: member-cluster change (manifest file rewritten) -> server answers with it`);
    console.log(`   ${CHANGES} changes, one at a time, ${GAP_MS}-${GAP_MS + 100} ms apart once all servers have one; notifyDelay ${NOTIFY_DELAY} s; poll every ${POLL_MS} ms; zone of 201 services`);
    const started = Date.now();
    for (let i = 1; i <= CHANGES; i++) {
      const ip = benchIp(i);
      const t0 = performance.now();
      writeAtomic(join(cluster, 'bench.json'), manifest(service('default', 'bench', ip)));
      const r = await waitForAnswer(targets, ip, t0, 15_000);
      r.forEach((ms, k) => (ms === undefined ? timeouts[k]++ : lat[k].push(ms)));
      r.forEach((ms, k) => ms !== undefined && r[0] !== undefined && k > 0 && after[k].push(ms - r[0]));
      if (i % 20 === 0) process.stdout.write(`   ${i}/${CHANGES} changes (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
      await sleep(GAP_MS + Math.floor(Math.random() * 100));
    }
    console.log(
      `   ${'server'.padEnd(18)} ${'p50 ms'.padStart(8)} ${'p90 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)} ${'n'.padStart(5)} ${'timeouts'.padStart(8)}   ${'after fedns: p50'.padStart(16)} ${'p99'.padStart(6)}`,
    );
    targets.forEach((t, k) => {
      const xs = lat[k];
      const f = (v: number | undefined, w = 8) => (v === undefined ? '-' : v.toFixed(0)).padStart(w);
      const a = after[k];
      console.log(
        `   ${t.label.padEnd(18)} ${f(pct(xs, 50))} ${f(pct(xs, 90))} ${f(pct(xs, 99))} ${f(xs.length ? Math.max(...xs) : undefined)} ${String(xs.length).padStart(5)} ${String(timeouts[k]).padStart(8)}   ${f(a.length ? pct(a, 50) : undefined, 16)} ${f(a.length ? pct(a, 99) : undefined, 6)}`,
      );
    });
    console.log('   times from the file write; "after fedns": the secondary\'s time minus fedns\'s for the same change.');
    const transfers = fedns
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"msg":"zone transfer"'))
      .map((l) => JSON.parse(l) as { kind: string });
    const kindsSeen = new Map<string, number>();
    for (const t of transfers) kindsSeen.set(t.kind, (kindsSeen.get(t.kind) ?? 0) + 1);
    console.log(`   transfers served by fedns (last 1 MiB of log): ${[...kindsSeen].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  } finally {
    for (const s of secondaries) await s.stop();
    if (fedns) {
      fedns.child.kill('SIGTERM');
      await new Promise((r) => fedns!.child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function udpAsk(port: number, msg: Buffer): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      reject(new Error('no answer'));
    }, 2000);
    s.on('message', (b) => {
      clearTimeout(t);
      s.close();
      resolvePromise(b);
    });
    s.bind(0, '127.0.0.1', () => s.send(msg, port, '127.0.0.1'));
  });
}

// ------------------------------------------------------------------------------------------------
// 2. Full transfers
// ------------------------------------------------------------------------------------------------

interface Xfr {
  ms: number;
  bytes: number;
  records: number;
  messages: number;
}

/** AXFR over TCP; ends when `expect` records have arrived (counted from ANCOUNT, nothing decoded). */
function axfr(port: number, expect: number): Promise<Xfr> {
  const q = encodeMessage({ id: 4711, questions: [{ name: ZONE, type: RRType.AXFR, class: RRClass.IN }] });
  const t0 = performance.now();
  return new Promise((resolvePromise, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let pending: Buffer = Buffer.alloc(0);
    let bytes = 0;
    let records = 0;
    let messages = 0;
    sock.on('connect', () => {
      const f = Buffer.alloc(2);
      f.writeUInt16BE(q.length);
      sock.write(Buffer.concat([f, q]));
    });
    sock.on('data', (c: Buffer) => {
      bytes += c.length;
      pending = pending.length ? Buffer.concat([pending, c]) : c;
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const len = pending.readUInt16BE(0);
        if ((pending.readUInt16BE(4) & 0xf) !== 0) return reject(new Error(`rcode ${pending.readUInt16BE(4) & 0xf}`));
        records += pending.readUInt16BE(2 + 6);
        messages++;
        pending = pending.subarray(2 + len);
      }
      if (records >= expect) {
        sock.destroy();
        resolvePromise({ ms: performance.now() - t0, bytes, records, messages });
      }
    });
    sock.on('error', reject);
  });
}

/**
 * Sends an SOA query every 2 ms from a worker thread (its own event loop, so a stalled fedns loop
 * cannot also delay the sending); stop() gives the slowest answer (ms) and how many were answered.
 */
function startProbe(port: number): { stop: () => Promise<{ max: number; n: number }> } {
  const query = encodeQuery(ZONE, RRType.SOA, { id: 0 });
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const dgram = require('node:dgram');
     const { port, query } = workerData;
     const sock = dgram.createSocket('udp4');
     const sent = new Map(); let max = 0; let n = 0; let id = 0;
     sock.on('message', (b) => { const t = sent.get(b.readUInt16BE(0)); if (t === undefined) return; sent.delete(b.readUInt16BE(0)); max = Math.max(max, performance.now() - t); n++; });
     sock.bind(0, '127.0.0.1', () => {
       const timer = setInterval(() => { id = (id + 1) & 0xffff; const q = Buffer.from(query); q.writeUInt16BE(id, 0); sent.set(id, performance.now()); sock.send(q, port, '127.0.0.1'); }, 2);
       parentPort.on('message', () => { clearInterval(timer); setTimeout(() => { for (const t of sent.values()) max = Math.max(max, performance.now() - t); parentPort.postMessage({ max, n }); sock.close(); }, 100); });
     });`,
    { eval: true, workerData: { port, query } },
  );
  return {
    stop: () =>
      new Promise((resolvePromise) => {
        worker.once('message', (r: { max: number; n: number }) => {
          void worker.terminate();
          resolvePromise(r);
        });
        worker.postMessage('stop');
      }),
  };
}

async function fullTransfers(): Promise<void> {
  console.log(`\n== full transfer: AXFR from fedns (in-process) to a TCP client on 127.0.0.1`);
  console.log(`   ${'records'.padStart(8)} ${'bytes'.padStart(10)} ${'messages'.padStart(8)} ${'cold ms'.padStart(8)} ${'first ms'.padStart(9)} ${'repeat ms (median of 5)'.padStart(24)} ${'MB/s'.padStart(6)} ${'query max ms'.padStart(13)}`);
  for (const target of [10_000, 100_000]) {
    const dir = mkdtempSync(join(tmpdir(), 'fedns-bench-axfr-'));
    const config = buildConfig({ domain: ZONE, listen: [`127.0.0.1:${await freePort()}`], ops: { listen: null }, transfer: { allow: ['127.0.0.1'] } }, join(dir, 'fedns.yaml'), dir);
    const fedns = new Fedns(config, pino({ level: 'silent' }));
    await fedns.start();
    try {
      const port = fedns.dns.addresses()[0].port;
      const c = fedns.federation.addCluster({ name: 'big', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
      const services = Math.ceil((target - 3) / 6);
      for (let i = 0; i < services; i++) {
        const ns = `ns${i % 50}`;
        const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
        c.upsert('Service', { namespace: ns, name: `svc${i}`, headless: false, ports: [{ name: 'http', port: 80, protocol: 'tcp' }], lbAddresses: [ip], lbHostnames: [], labels: {} });
        c.upsert(
          'EndpointSlice',
          packSlice({
            namespace: ns,
            name: `svc${i}-s`,
            service: `svc${i}`,
            addressType: 'IPv4',
            ports: [{ name: 'http', port: 8080, protocol: 'tcp' }],
            endpoints: [{ addresses: [ip], ready: true, zone: 'z1' }],
          }),
        );
      }
      c.markLive();
      c.flush();
      while (!fedns.federation.snapshot.ready || fedns.federation.snapshot.recordCount < target) await sleep(20);
      const expect = fedns.federation.snapshot.recordCount + 1;
      const cold = await axfr(port, expect); // first ever: also warms up the code paths
      // One service changes address: a new serial whose order is not cached yet.
      const before = fedns.federation.snapshot.serial;
      c.upsert('Service', { namespace: 'ns0', name: 'svc0', headless: false, ports: [{ name: 'http', port: 80, protocol: 'tcp' }], lbAddresses: ['10.255.255.254'], lbHostnames: [], labels: {} });
      c.flush();
      while (fedns.federation.snapshot.serial === before) await sleep(5);
      const probe = startProbe(port);
      await sleep(50);
      const first = await axfr(port, expect);
      const stall = await probe.stop();
      const repeats: Xfr[] = [];
      for (let k = 0; k < 5; k++) repeats.push(await axfr(port, expect));
      const med = pct(
        repeats.map((r) => r.ms),
        50,
      );
      console.log(
        `   ${String(first.records).padStart(8)} ${String(first.bytes).padStart(10)} ${String(first.messages).padStart(8)} ${cold.ms.toFixed(0).padStart(8)} ${first.ms.toFixed(0).padStart(9)} ${med.toFixed(0).padStart(24)} ${(first.bytes / 1e6 / (med / 1000)).toFixed(1).padStart(6)} ${stall.max.toFixed(1).padStart(13)}`,
      );
    } finally {
      await fedns.stop(200);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log('   cold: very first AXFR of the process; first: first AXFR of a new serial (orders the zone, encodes);');
  console.log('   repeat: same serial again (order cached, encodes again); MB/s from the repeat median.');
  console.log('   query max: slowest answer to an SOA query sent every 2 ms (by another thread) during the "first" transfer.');
}

async function main(): Promise<void> {
  console.log(`# fedns transfer benchmark ${new Date().toISOString()} node ${process.version}`);
  if (!args.includes('--skip-axfr')) await fullTransfers();
  if (!args.includes('--skip-propagation')) await propagation();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
