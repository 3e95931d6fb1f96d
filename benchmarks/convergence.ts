// Convergence latency: from the (fake) API server writing a watch event to fedns answering with
// it, measured by a client polling fedns over UDP. p50 and p99 over CHANGES changes, idle, while
// the API server flaps (every 3.5 s it ends every watch with a fault: 410, in-stream 410, a
// dropped connection, watches closed at once, 500, a malformed line, a failed list, 429, an
// unreachable or a hung server for 1 s) and while dnsperf loads the server. fedns runs as its own
// process (the CLI, default timings), the fake API server in this one.
// usage: node dist/benchmarks/convergence.js [changes=1000] [services=1000] [churn seconds=70]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RRType } from '../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../src/wire/message.js';
import { FakeApiServer } from '../test/support/fake-apiserver.js';

const CHANGES = Number(process.argv[2] ?? 1000);
const SERVICES = Number(process.argv[3] ?? 1000);
const CHURN_SECONDS = Number(process.argv[4] ?? 70);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const service = (i: number, ip: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: `svc${i}`, namespace: 'bench' },
  spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  status: { loadBalancer: { ingress: [{ ip }] } },
});
const slice = (i: number) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: `svc${i}-x`, namespace: 'bench', labels: { 'kubernetes.io/service-name': `svc${i}` } },
  addressType: 'IPv4',
  endpoints: [{ addresses: [`10.0.${i >> 8}.${i & 255}`], conditions: { ready: true } }],
});
const ipFor = (i: number, gen: number) => `198.18.${gen % 256}.${(i % 250) + 1}`;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  s.close();
  return p;
}

class Poller {
  private readonly sock = createSocket('udp4');
  private waiting?: (m: Buffer) => void;
  constructor(private readonly port: number) {
    this.sock.on('message', (m) => this.waiting?.(m));
  }
  ask(name: string, timeoutMs = 200): Promise<string[] | undefined> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.waiting = (m) => {
        clearTimeout(t);
        this.waiting = undefined;
        try {
          resolve(decodeMessage(m).answers.filter((r) => r.type === RRType.A).map((r) => r.data as string));
        } catch {
          resolve(undefined);
        }
      };
      this.sock.send(encodeQuery(name, RRType.A), this.port, '127.0.0.1');
    });
  }
  close(): void {
    this.sock.close();
  }
}

/**
 * Change number `k`: gives service k*37 a new address (address number `addr`), then asks for it
 * (`pauseMs` between asks) until the answer has it or `limitMs` passed.
 */
async function changeAndWait(api: FakeApiServer, poll: Poller, k: number, addr: number, limitMs: number, pauseMs: number): Promise<{ ms: number; seen: boolean }> {
  const i = (k * 37) % SERVICES;
  const ip = ipFor(i, addr);
  const name = `svc${i}.bench.fed.example.com.`;
  const t0 = performance.now();
  api.apply(service(i, ip));
  for (;;) {
    const got = await poll.ask(name);
    if (got?.includes(ip)) return { ms: performance.now() - t0, seen: true };
    if (performance.now() - t0 > limitMs) return { ms: performance.now() - t0, seen: false };
    if (pauseMs) await sleep(pauseMs);
  }
}

async function run(api: FakeApiServer, port: number, label: string): Promise<void> {
  const poll = new Poller(port);
  const lat: number[] = [];
  let timeouts = 0;
  for (let k = 0; k < CHANGES; k++) {
    const c = await changeAndWait(api, poll, k, k + 1, 5000, 0);
    if (!c.seen) timeouts++;
    lat.push(c.ms);
  }
  poll.close();
  console.log(
    `${label}: ${CHANGES} changes, p50 ${percentile(lat, 0.5).toFixed(2)} ms, p99 ${percentile(lat, 0.99).toFixed(2)} ms, max ${Math.max(...lat).toFixed(2)} ms${timeouts ? `, ${timeouts} not seen within 5 s` : ''}`,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The flapping API server's faults, one every 3.5 s in turn; each resolves when it is over. */
function faults(api: FakeApiServer): Array<[string, () => Promise<void>]> {
  const kinds = ['Service', 'EndpointSlice'];
  const brokenFor = async (mode: 'reset' | 'hang') => {
    api.breakAll(mode);
    await sleep(1000);
    api.restore();
  };
  return [
    ['410 on watch', async () => (kinds.forEach((kind) => api.failWatch(410, { times: 1, kind })), void api.endOpenWatches())],
    ['in-stream 410', async () => void api.expireOpenWatches()],
    ['connection dropped', async () => void api.closeAllWatches()],
    ['watch closed at once', async () => (kinds.forEach((kind) => api.closeWatchesImmediately({ times: 1, kind })), void api.endOpenWatches())],
    ['500 on watch', async () => (kinds.forEach((kind) => api.failWatch(500, { times: 1, kind })), void api.endOpenWatches())],
    ['malformed line', async () => void api.sendMalformedLine()],
    ['failed list', async () => (kinds.forEach((kind) => api.failList(500, { times: 1, kind })), void api.expireOpenWatches())],
    ['429', async () => (kinds.forEach((kind) => api.failWatch(429, { times: 1, kind })), void api.endOpenWatches())],
    ['unreachable 1 s', () => brokenFor('reset')],
    ['hung 1 s', () => brokenFor('hang')],
  ];
}

/** Changes one service after another while the API server flaps; every change's latency. */
async function churn(api: FakeApiServer, port: number): Promise<void> {
  const poll = new Poller(port);
  const list = faults(api);
  let flapping = true;
  let injected = 0;
  const flapper = (async () => {
    while (flapping) {
      const cycle = performance.now();
      await list[injected++ % list.length][1]();
      await sleep(Math.max(0, cycle + 3500 - performance.now()));
    }
  })();
  const lat: number[] = [];
  let timeouts = 0;
  const end = performance.now() + CHURN_SECONDS * 1000;
  for (let k = 0; performance.now() < end; k++) {
    const c = await changeAndWait(api, poll, k, 100_000 + k, 30_000, 5);
    if (!c.seen) timeouts++;
    lat.push(c.ms);
    await sleep(100);
  }
  flapping = false;
  await flapper;
  api.clearFaults();
  poll.close();
  console.log(
    `churn (a fault every 3.5 s, ${injected} faults): ${lat.length} changes, p50 ${percentile(lat, 0.5).toFixed(0)} ms, p99 ${percentile(lat, 0.99).toFixed(0)} ms, max ${Math.max(...lat).toFixed(0)} ms${timeouts ? `, ${timeouts} not seen within 30 s` : ''}`,
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fedns-conv-'));
  const api = await FakeApiServer.start({ bookmarkIntervalMs: 5000 });
  let fedns: ChildProcess | undefined;
  try {
    for (let i = 0; i < SERVICES; i++) {
      api.apply(service(i, ipFor(i, 0)));
      api.apply(slice(i));
    }
    api.writeKubeconfig(join(dir, 'kubeconfig'), { context: 'bench' });
    const port = await freePort();
    writeFileSync(
      join(dir, 'fedns.yaml'),
      `listen: [127.0.0.1:${port}]\nops: { listen: null }\nlog: { level: warn }\nclusters:\n  - name: bench\n    region: r1\n    zones: [z1]\n    source: { type: kube, kubeconfig: kubeconfig, context: bench }\n`,
    );
    fedns = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'cli.js'), 'serve', '--config', join(dir, 'fedns.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const poll = new Poller(port);
    const start = performance.now();
    while (!(await poll.ask(`svc${SERVICES - 1}.bench.fed.example.com.`))?.length) {
      if (performance.now() - start > 60_000) throw new Error('fedns did not sync within 60 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    poll.close();
    console.log(`fedns synced ${SERVICES} services in ${(performance.now() - start).toFixed(0)} ms (from process start)`);
    await run(api, port, 'idle');
    if (CHURN_SECONDS > 0) await churn(api, port);
    const hasDnsperf = spawnSync('sh', ['-c', 'command -v dnsperf']).status === 0;
    if (!hasDnsperf) {
      console.log('under load: skipped (dnsperf not installed)');
      return;
    }
    const queries = join(dir, 'queries.txt');
    writeFileSync(queries, Array.from({ length: SERVICES }, (_, i) => `svc${i}.bench.fed.example.com A`).join('\n') + '\n');
    const load = spawn('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', '600', '-c', '4', '-q', '50'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let report = '';
    load.stdout!.on('data', (d) => (report += d));
    await new Promise((r) => setTimeout(r, 1000));
    await run(api, port, 'under dnsperf load');
    load.kill('SIGINT');
    await new Promise((r) => load.once('exit', r));
    const qps = /Queries per second:\s+([\d.]+)/.exec(report)?.[1];
    if (qps) console.log(`  (dnsperf meanwhile: ${Number(qps).toFixed(0)} queries/s answered)`);
  } finally {
    fedns?.kill('SIGTERM');
    if (fedns) await new Promise((r) => fedns!.once('exit', r));
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
