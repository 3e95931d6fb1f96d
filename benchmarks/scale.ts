// Scale: CLUSTERS member clusters (fake API servers in this process) x SERVICES services x 3
// endpoints each, federated by one fedns process. Prints the initial sync time (process start to
// every cluster's last service answering), fedns's resident memory and the zone size, each beside
// Knot DNS's for the same zone in the same run (`fedns zone` output loaded by knotd: its load time
// and resident memory) as a ratio; and the longest wait of a client asking without pause during
// the initial sync, a re-list of every cluster and a reload that rebuilds every service; and the
// CPU time fedns (its main thread apart) and this process used by the end of the sync. The fake
// API servers serve list pages rendered before fedns starts (FakeApiServerOptions.renderListPages):
// a real API server serves lists from its watch cache, on machines of its own. Last, dnsperf asks
// fedns and then Knot (one UDP worker) for names drawn at random from the whole zone: queries/s
// where most lookups reach memory no CPU cache holds, and the ratio to Knot's.
// The cost of one endpoint change at 1,000 vs 100,000 services is benchmarks/change-cost.ts.
// usage: node dist/benchmarks/scale.js [clusters=20] [services=5000]
// FEDNS_NODE_ARGS: extra node flags for fedns (e.g. --trace-gc); FEDNS_STDOUT: a file for fedns's
// standard output (its logs, and what such flags print); FEDNS_LOG_LEVEL: its log level (warn).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RRType } from '../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../src/wire/message.js';
import { FakeApiServer } from '../test/support/fake-apiserver.js';
import { freePort, requirePeer, startKnot } from '../test/support/peers.js';
import { StallProbe, type StallFigures } from '../test/support/stall-probe.js';

const CLUSTERS = Number(process.argv[2] ?? 20);
const SERVICES = Number(process.argv[3] ?? 5000);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** One A query over UDP (EDNS: clusters x 3 addresses do not fit 512 bytes); `read` takes the reply, -1 without one in 500 ms. */
function query(port: number, name: string, read: (m: ReturnType<typeof decodeMessage>) => number): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(-1);
    }, 500);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(read(decodeMessage(m)));
    });
    s.send(encodeQuery(name, RRType.A, { edns: { udpSize: 1232 } }), port, '127.0.0.1');
  });
}

/** Stops a child process (SIGTERM) and waits for its exit, unless it has exited already. */
async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exit;
}

/** How many answers (-2: truncated). */
const ask = (port: number, name: string) => query(port, name, (msg) => (msg.tc ? -2 : msg.answers.length));
/** The TTL of the first answer. */
const askTtl = (port: number, name: string) => query(port, name, (msg) => msg.answers[0]?.ttl ?? -1);

/** CPU seconds used (utime + stime, in clock ticks of 1/100 s on Linux) by a process, or by one of its threads (`/proc/PID/task/TID/stat`). */
function cpuSeconds(statFile: string): number {
  const stat = readFileSync(statFile, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Resident memory now (VmRSS) or the most it has been (VmHWM), MiB. */
function rssMiB(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * Endpoint k (1-3) of service i in cluster c: a block of four addresses of 10.0.0.0/8 per service,
 * every cluster's after the one before, of which the last three are used (none ends in .0).
 * 10.c.(i >> 6).x, as this was, gave addresses such as 10.0.256.1 past 16,384 services a cluster,
 * which fedns rightly ignores.
 */
function endpointAddress(c: number, i: number, k: number): string {
  const n = (c * SERVICES + i) * 4 + k;
  return `10.${n >>> 16}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Seconds of each dnsperf run over the whole zone. */
const THROUGHPUT_S = 10;
/** Queries in the file dnsperf reads (over and over). */
const QUERY_NAMES = 200_000;

interface Throughput {
  qps: number;
  lost: number;
}

/** "name A" lines for QUERY_NAMES owners of A records of `zoneText` (a master file), drawn at random (seeded). */
function randomQueries(zoneText: string): string {
  const owners: string[] = [];
  let last = '';
  for (const line of zoneText.split('\n')) {
    const f = line.split(/\s+/);
    if (f[3] === 'A' && f[0] !== last) owners.push((last = f[0]));
  }
  if (owners.length === 0) throw new Error('the zone has no A records to ask for');
  let x = 1;
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  return Array.from({ length: QUERY_NAMES }, () => `${owners[next() % owners.length]} A`).join('\n') + '\n';
}

/** dnsperf against 127.0.0.1:`port` with `queries` (EDNS: an answer holds up to clusters x 3 addresses). */
function dnsperf(port: number, queries: string): Throughput {
  const r = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', String(THROUGHPUT_S), '-c', '10', '-q', '100', '-e'], { encoding: 'utf8', timeout: (THROUGHPUT_S + 30) * 1000 });
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(r.stdout ?? '')?.[1]);
  if (!(qps > 0)) throw new Error(`dnsperf gave no figure (exit ${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return { qps, lost: Number(/Queries lost:\s+(\d+)/.exec(r.stdout)?.[1] ?? 0) };
}

const lostText = (t: Throughput) => (t.lost ? `, ${t.lost} lost` : '');

async function main(): Promise<void> {
  if (CLUSTERS * SERVICES * 4 > 2 ** 24) throw new Error(`${CLUSTERS} clusters x ${SERVICES} services need more addresses than 10.0.0.0/8 holds (at most 4,194,304 services in all)`);
  const dir = mkdtempSync(join(tmpdir(), 'fedns-scale-'));
  const apis: FakeApiServer[] = [];
  let fedns: ChildProcess | undefined;
  try {
    let clusters = '';
    for (let c = 0; c < CLUSTERS; c++) {
      const api = await FakeApiServer.start({ bookmarkIntervalMs: 30_000, renderListPages: true });
      apis.push(api);
      for (let i = 0; i < SERVICES; i++) {
        api.apply({
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: `svc${i}`, namespace: `ns${i % 20}` },
          spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
        });
        api.apply({
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: { name: `svc${i}-x`, namespace: `ns${i % 20}`, labels: { 'kubernetes.io/service-name': `svc${i}` } },
          addressType: 'IPv4',
          ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
          endpoints: [1, 2, 3].map((k) => ({ addresses: [endpointAddress(c, i, k)], conditions: { ready: true }, zone: `z${k}` })),
        });
      }
      // Pages as fedns asks for them (500 a page), rendered now: see FakeApiServerOptions.renderListPages.
      api.renderLists(['Service', 'EndpointSlice'], 500);
      api.writeKubeconfig(join(dir, `c${c}.kubeconfig`), { context: `c${c}` });
      clusters += `  - { name: c${c}, region: r${c % 4}, source: { type: kube, kubeconfig: c${c}.kubeconfig, context: c${c} } }\n`;
    }
    // DNS listens on both UDP and TCP: a port free for both.
    const port = await freePort();
    const opsPort = await freePort();
    const config = (ttl: number) =>
      `listen: [127.0.0.1:${port}]\nops: { listen: 127.0.0.1:${opsPort} }\nlog: { level: ${process.env.FEDNS_LOG_LEVEL ?? "warn"} }\naddressMode: endpoints\ntransfer: { allow: [127.0.0.1] }\nttl: { default: ${ttl} }\nclusters:\n${clusters}`;
    writeFileSync(join(dir, 'fedns.yaml'), config(30));
    const nodeArgs = (process.env.FEDNS_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    fedns = spawn(process.execPath, [...nodeArgs, join(ROOT, 'dist', 'src', 'cli.js'), 'serve', '--config', join(dir, 'fedns.yaml')], {
      stdio: ['ignore', process.env.FEDNS_STDOUT ? openSync(process.env.FEDNS_STDOUT, 'w') : 'ignore', 'inherit'],
    });
    // A fedns that stops before the end (it could not start, or crashed) ends the run: every
    // wait for it to answer or to finish something goes through orExit().
    const exited = new Promise<never>((_, reject) =>
      fedns!.once('exit', (code, signal) => reject(new Error(`fedns exited (${signal ?? `code ${code}`}) before the benchmark ended: see its log above`))),
    );
    exited.catch(() => {});
    const orExit = <T>(p: Promise<T>): Promise<T> => Promise.race([p, exited]);
    // fedns's own longest event-loop stall since the previous scrape (prom-client resets it at
    // each one): the probe's waits also include this machine's scheduling of the probe itself.
    let lagSoFar = 0;
    const metricsText = async () => {
      const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
      lagSoFar = Math.max(lagSoFar, 1000 * Number(/^fedns_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1] ?? 0));
      return text;
    };
    /** The longest stall since the previous call. */
    const lagMs = async () => {
      await metricsText();
      const lag = lagSoFar;
      lagSoFar = 0;
      return lag;
    };
    // The stall probe starts once fedns answers at all (SERVFAIL while nothing has synced).
    while ((await orExit(ask(port, 'example.com.'))) === -1) {
      if (performance.now() - t0 > 60_000) throw new Error('fedns does not answer');
    }
    const stall = await StallProbe.start(port, 'example.com.');
    await lagMs();
    // Synced when the last service answers with every cluster's three endpoints.
    const want = CLUSTERS * 3;
    const probe = `svc${SERVICES - 1}.ns${(SERVICES - 1) % 20}.fed.svc.example.com.`;
    const answering = async (what: string, ok: (n: number) => boolean) => {
      for (;;) {
        const n = await orExit(ask(port, probe));
        if (ok(n)) return;
        if (performance.now() - t0 > 600_000) throw new Error(`${what}: not done after 10 minutes (last answer: ${n} records)`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    // ... and the zone holds every service's records: short and global names with every
    // endpoint, a regional and a zonal name per region and zone (every endpoint once in each),
    // two SRV names, and the apex's SOA, NS and glue.
    const expected = SERVICES * (12 * CLUSTERS + 2) + 3;
    // The gauge is labelled by zone; this configuration serves the federation zone only.
    const zoneRecords = async () => Number(/^fedns_zone_records(?:\{[^}]*\})? (\S+)$/m.exec(await metricsText())?.[1]);
    await answering('initial sync', (n) => n === want);
    while ((await zoneRecords()) !== expected) {
      if (performance.now() - t0 > 600_000) throw new Error(`initial sync: the zone does not reach ${expected} records (it has ${await zoneRecords()})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const syncMs = performance.now() - t0;
    // Where the sync's time went: both processes share this machine's cores.
    const cpuBench = process.cpuUsage(cpu0);
    const syncCpu = { fedns: cpuSeconds(`/proc/${fedns.pid}/stat`), main: cpuSeconds(`/proc/${fedns.pid}/task/${fedns.pid}/stat`), bench: (cpuBench.user + cpuBench.system) / 1e6 };
    const syncStall = { ...(await stall.take()), lag: await lagMs(), peak: rssMiB(fedns.pid!, 'VmHWM') };
    await new Promise((r) => setTimeout(r, 2000));
    // RSS includes heap V8 has not given back; the live JavaScript heap is what the data costs.
    const metrics = await metricsText();
    const heapUsed = Number(/^fedns_nodejs_heap_size_used_bytes (\S+)$/m.exec(metrics)?.[1]) / 1048576;
    const records = Number(/^fedns_zone_records(?:\{[^}]*\})? (\S+)$/m.exec(metrics)?.[1]);
    const rss = rssMiB(fedns.pid!);
    if (process.env.MEMORY_DETAIL) {
      for (const line of metrics.split('\n')) if (/^fedns_nodejs_(heap_s|external|heap_space_size_(used|total))/.test(line)) console.log('   ', line);
    }
    // Answering on (the asking client never stops): what stays, sampled every 5 s for 30 s.
    // Garbage that reaches V8's old generation shows here as growth, until a full collection.
    const serving: number[] = [];
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 5000));
      serving.push(rssMiB(fedns.pid!));
    }

    // Every cluster's watches expire: each lists everything again (nothing changed).
    await stall.take();
    await lagMs();
    for (const a of apis) {
      a.expireNewWatches({ times: 2 });
      a.endOpenWatches();
    }
    // Re-listed when every API server has served its lists again.
    const listed = () => apis.every((a) => a.requestLog.filter((r) => r.verb === 'list' && !r.query.continue).length >= 4);
    while (!listed()) {
      if (performance.now() - t0 > 600_000) throw new Error('re-list not done after 10 minutes');
      await orExit(new Promise((r) => setTimeout(r, 100)));
    }
    await new Promise((r) => setTimeout(r, 3000));
    const relistStall = { ...(await stall.take()), lag: await lagMs(), peak: rssMiB(fedns.pid!, 'VmHWM') };

    // A reload that changes the default TTL: every service is built again.
    await lagMs();
    const reloadStart = performance.now();
    writeFileSync(join(dir, 'fedns.yaml'), config(31));
    fedns.kill('SIGHUP');
    // The new TTL shows unless the clusters went stale (the stale TTL is lower): bounded wait.
    let reloadMs = NaN;
    while (performance.now() - reloadStart < 120_000) {
      if ((await orExit(askTtl(port, probe))) === 31) {
        reloadMs = performance.now() - reloadStart;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const reloadStall = { ...(await stall.take()), lag: await lagMs(), peak: rssMiB(fedns.pid!, 'VmHWM') };

    // The zone as `fedns zone` prints it (the same master file), from the running server.
    const zoneStart = performance.now();
    const zoneText = await (await fetch(`http://127.0.0.1:${opsPort}/zone`)).text();
    const zoneMs = performance.now() - zoneStart;
    const zoneStall = { ...(await stall.stop()), lag: await lagMs(), peak: rssMiB(fedns.pid!, 'VmHWM') };

    // Queries over the whole zone, each to a name drawn at random: most reach parts of the
    // zone no CPU cache holds, where the throughput benchmark's 1,000 services stay in cache.
    const haveDnsperf = requirePeer('dnsperf');
    const queries = join(dir, 'queries.txt');
    if (haveDnsperf) writeFileSync(queries, randomQueries(zoneText));
    const fednsQps = haveDnsperf ? dnsperf(port, queries) : undefined;

    await stopped(fedns);
    fedns = undefined;

    // Knot DNS with the same zone.
    let knot: { loadMs: number; rss: number; qps?: Throughput } | undefined;
    if (requirePeer('knotd')) {
      const zoneFile = join(dir, 'zone.db');
      writeFileSync(zoneFile, zoneText);
      const k0 = performance.now();
      const peer = await startKnot({ origin: 'example.com.', zoneFile, readyTimeoutMs: 300_000 });
      const loadMs = performance.now() - k0;
      const answered = await ask(peer.port, probe);
      if (answered !== want) throw new Error(`Knot answers ${answered} records for ${probe}, not ${want}`);
      await new Promise((r) => setTimeout(r, 2000));
      knot = { loadMs, rss: rssMiB(peer.pid), qps: haveDnsperf ? dnsperf(peer.port, queries) : undefined };
      await peer.stop();
    }

    const ratio = (a: number, b: number | undefined) => (b ? ` (${(a / b).toFixed(1)} x Knot)` : '');
    const waits = (f: StallFigures & { lag: number }) =>
      `longest wait ${f.maxMs.toFixed(0)} ms over ${f.answers} answers${f.timeouts ? `, ${f.timeouts} unanswered within 2 s` : ''} (fedns's event loop: longest stall ${f.lag.toFixed(0)} ms)`;
    console.log(`${CLUSTERS} clusters x ${SERVICES} services x 3 endpoints (${CLUSTERS * SERVICES} Services, ${CLUSTERS * SERVICES * 3} endpoints); zone: ${records} records${zoneText ? ` (${(zoneText.length / 1e6).toFixed(0)} MB as \`fedns zone\` prints it)` : ''}`);
    console.log(`  initial sync: ${(syncMs / 1000).toFixed(1)} s from process start to the last service answering from all clusters${ratio(syncMs, knot?.loadMs)}`);
    console.log(`    CPU time by then: fedns ${syncCpu.fedns.toFixed(1)} s (its main thread ${syncCpu.main.toFixed(1)} s, V8's and libuv's helper threads the rest); this benchmark's process (${CLUSTERS} API servers and the asking client) ${syncCpu.bench.toFixed(1)} s`);
    console.log(`  resident memory after sync: ${rss.toFixed(0)} MiB${ratio(rss, knot?.rss)}; JavaScript heap in use: ${heapUsed.toFixed(0)} MiB`);
    console.log(`  resident memory answering for 30 s more: ${Math.min(...serving).toFixed(0)}-${Math.max(...serving).toFixed(0)} MiB (every 5 s: ${serving.map((m) => m.toFixed(0)).join(', ')})`);
    console.log(`  resident memory at its peak (VmHWM) by the end of: sync ${syncStall.peak.toFixed(0)} MiB, re-list ${relistStall.peak.toFixed(0)}, reload ${reloadStall.peak.toFixed(0)}, /zone ${zoneStall.peak.toFixed(0)}`);
    if (knot) console.log(`  Knot DNS, same zone: loaded in ${(knot.loadMs / 1000).toFixed(1)} s (start to answering), ${knot.rss.toFixed(0)} MiB resident`);
    else console.log('  Knot DNS not installed: no anchor');
    if (fednsQps) {
      const vsKnot = knot?.qps ? ` (${(fednsQps.qps / knot.qps.qps).toFixed(2)} x Knot's ${knot.qps.qps.toFixed(0)} q/s, one UDP worker${lostText(knot.qps)})` : '';
      console.log(`  A queries to names drawn at random from the whole zone (dnsperf, ${THROUGHPUT_S} s, 10 clients, 100 outstanding): ${fednsQps.qps.toFixed(0)} q/s${lostText(fednsQps)}${vsKnot}`);
    } else console.log('  dnsperf not installed: no throughput over the whole zone');
    console.log(`  a client asking without pause:\n    initial sync ${waits(syncStall)};\n    re-list of every cluster ${waits(relistStall)};\n    reload rebuilding every service (${Number.isNaN(reloadMs) ? 'new TTL not seen within 120 s: clusters stale?' : `${(reloadMs / 1000).toFixed(1)} s`}) ${waits(reloadStall)};\n    /zone (${(zoneMs / 1000).toFixed(1)} s) ${waits(zoneStall)}`);
  } finally {
    if (fedns) await stopped(fedns);
    for (const a of apis) await a.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
