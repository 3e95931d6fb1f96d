// Scale: CLUSTERS member clusters (fake API servers in this process) x SERVICES services x 3
// endpoints each, federated by one fedns process. Prints the initial sync time (process start to
// every cluster's last service answering), fedns's resident memory, and the zone size.
// The cost of one endpoint change at 1,000 vs 100,000 services is benchmarks/change-cost.ts.
// usage: node dist/benchmarks/scale.js [clusters=20] [services=5000]
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RRType } from '../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../src/wire/message.js';
import { FakeApiServer } from '../test/support/fake-apiserver.js';

const CLUSTERS = Number(process.argv[2] ?? 20);
const SERVICES = Number(process.argv[3] ?? 5000);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function ask(port: number, name: string): Promise<number> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(-1);
    }, 500);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      const msg = decodeMessage(m);
      resolve(msg.tc ? -2 : msg.answers.length);
    });
    // EDNS: the full answer (clusters x 3 addresses) does not fit 512 bytes.
    s.send(encodeQuery(name, RRType.A, { edns: { udpSize: 1232 } }), port, '127.0.0.1');
  });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fedns-scale-'));
  const apis: FakeApiServer[] = [];
  let fedns: ChildProcess | undefined;
  try {
    let clusters = '';
    for (let c = 0; c < CLUSTERS; c++) {
      const api = await FakeApiServer.start({ bookmarkIntervalMs: 30_000 });
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
          endpoints: [1, 2, 3].map((k) => ({ addresses: [`10.${c}.${i >> 6}.${((i & 63) << 2) + k}`], conditions: { ready: true }, zone: `z${k}` })),
        });
      }
      api.writeKubeconfig(join(dir, `c${c}.kubeconfig`), { context: `c${c}` });
      clusters += `  - { name: c${c}, region: r${c % 4}, source: { type: kube, kubeconfig: c${c}.kubeconfig, context: c${c} } }\n`;
    }
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    s.close();
    const opsPort = await new Promise<number>((r) => {
      const t = createServer().listen(0, '127.0.0.1', () => {
        const p = (t.address() as { port: number }).port;
        t.close(() => r(p));
      });
    });
    writeFileSync(
      join(dir, 'fedns.yaml'),
      `listen: [127.0.0.1:${port}]\nops: { listen: 127.0.0.1:${opsPort} }\nlog: { level: warn }\naddressMode: endpoints\nclusters:\n${clusters}`,
    );
    const t0 = performance.now();
    fedns = spawn(process.execPath, ['--max-old-space-size=8192', join(ROOT, 'dist', 'src', 'cli.js'), 'serve', '--config', join(dir, 'fedns.yaml')], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    // Synced when the last service answers with every cluster's three endpoints.
    const want = CLUSTERS * 3;
    const probe = `svc${SERVICES - 1}.ns${(SERVICES - 1) % 20}.fed.svc.example.com.`;
    for (;;) {
      const n = await ask(port, probe);
      if (n === want) break;
      if (performance.now() - t0 > 600_000) throw new Error(`not synced after 10 minutes (last answer: ${n} records)`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const syncMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 2000));
    console.log(`${CLUSTERS} clusters x ${SERVICES} services x 3 endpoints (${CLUSTERS * SERVICES} Services, ${CLUSTERS * SERVICES * 3} endpoints)`);
    console.log(`  initial sync: ${(syncMs / 1000).toFixed(1)} s from process start to the last service answering from all clusters`);
    // RSS includes heap V8 has not given back; the live JavaScript heap is what the data costs.
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    const heapUsed = Number(/^fedns_nodejs_heap_size_used_bytes (\S+)$/m.exec(metrics)?.[1]) / 1048576;
    const records = Number(/^fedns_zone_records (\S+)$/m.exec(metrics)?.[1]);
    console.log(`  resident memory after sync: ${rssMiB(fedns.pid!).toFixed(0)} MiB; JavaScript heap in use: ${heapUsed.toFixed(0)} MiB; zone: ${records} records`);
  } finally {
    fedns?.kill('SIGTERM');
    if (fedns) await new Promise((r) => fedns!.once('exit', r));
    for (const a of apis) await a.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
