// The page reader converts pages of Services and EndpointSlices on a worker thread: what comes
// back must be exactly what the main thread would have made (values, shared lists, skipped
// objects, the list's position), its problems the ApiErrors a list in the main thread gives, and
// a worker that cannot start or dies must fail only the pages it held.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertPage, PAGE_BATCH, type ConvertedPage } from '../../src/cluster/list-page.js';
import { adoptSlice, slimEndpointSlice, type SlimEndpointSlice } from '../../src/cluster/objects.js';
import { PageReader } from '../../src/cluster/page-reader.js';
import { ApiError } from '../../src/cluster/supervisor.js';
import { settledHeap } from '../support/heap.js';
import { workerScripts } from '../support/worker-scripts.js';

/** A worker script of this test's own. */
const script = workerScripts('fedns-page-reader-');

const services = [
  { metadata: { namespace: 'NS', name: 'Web', labels: { app: 'web' }, annotations: { 'fedns.io/ttl': '30', 'fedns.io/policy': 'failover', 'fedns.io/failover': 'b,a' } }, spec: { ports: [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }] }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }, { ip: '2001:DB8:0::1' }, { hostname: 'lb.example.net' }, { hostname: 'bad..name' }] } } },
  { metadata: { namespace: 'ns', name: 'headless' }, spec: { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] } },
  { metadata: { namespace: 'ns', name: 'plain' }, spec: { ports: [{ name: 'Not A Label', port: 80 }, { port: 81 }] } },
  { metadata: { namespace: 'ns' } },
  'not an object',
  ['nor', 'this'],
  null,
];

const endpoint = (i: number, extra: Record<string, unknown> = {}) => ({ addresses: [`10.0.${i >> 8}.${i & 255}`], conditions: { ready: true }, zone: `z${i % 3}`, ...extra });
const slices = [
  { metadata: { namespace: 'ns', name: 'web-a', labels: { 'kubernetes.io/service-name': 'Web' }, annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-01-02T03:04:05Z' } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }], endpoints: [endpoint(1), endpoint(2, { conditions: { ready: false } }), endpoint(3, { hostname: 'pod-3', addresses: ['10.0.0.3', '10.0.0.4'] })] },
  { metadata: { namespace: 'ns', name: 'web-b', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv6', ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['2001:DB8::0:1'], conditions: { terminating: true }, zone: 'Bad Zone' }] },
  // More endpoints than slices share a zone list for.
  { metadata: { namespace: 'ns', name: 'big', labels: { 'kubernetes.io/service-name': 'big' } }, addressType: 'IPv4', endpoints: Array.from({ length: 40 }, (_, i) => endpoint(i)) },
  { metadata: { namespace: 'ns', name: 'empty' }, endpoints: [] },
  { metadata: { name: 'no-namespace', namespace: 'Not_A_Label' } },
];

const page = (items: unknown[], metadata: Record<string, unknown> = { resourceVersion: '42', continue: 'next' }) => Buffer.from(JSON.stringify({ kind: 'List', metadata, items }));

describe('objects read on the page worker', () => {
  // First in this file: what earlier tests leave to collect would blur the measure.
  it('take no more memory than those read on the main thread (a structured clone makes bigger arrays)', async () => {
    const N = 20_000;
    const object = (i: number) => ({
      metadata: { namespace: `ns${i % 20}`, name: `svc${i}-x`, labels: { 'kubernetes.io/service-name': `svc${i}` } },
      ports: [{ name: 'http', port: 8080 }],
      endpoints: [1, 2, 3].map((k) => ({ addresses: [`10.${1 + (i >> 14)}.${(i >> 6) & 255}.${((i & 63) << 2) + k}`], conditions: { ready: true }, zone: `z${k}` })),
    });
    const h0 = await settledHeap();
    const here = Array.from({ length: N }, (_, i) => slimEndpointSlice(object(i)));
    const h1 = await settledHeap();
    const seen = new Map<object, unknown>();
    const adopted = (structuredClone(Array.from({ length: N }, (_, i) => slimEndpointSlice(object(N + i)))) as SlimEndpointSlice[]).map((s) => adoptSlice(s, seen));
    const h2 = await settledHeap();
    expect(adopted[5].zones).toBe(here[5].zones);
    expect(adopted[5].ports).toBe(here[5].ports);
    // Measured: 104 bytes more a slice when its arrays stay the clone's, 0-3 once copied.
    expect((h2 - h1 - (h1 - h0)) / N).toBeLessThan(40);
  });
});

describe('the page reader', () => {
  it('gives a page bigger than one batch (PAGE_BATCH) whole and in order, its skipped objects too', async () => {
    const reader = new PageReader({ minWorkerBytes: 0, idleMs: 50 });
    try {
      // 2.5 batches of objects, one in three unreadable: items and skipped both span batches.
      const n = Math.round(PAGE_BATCH * 2.5);
      const items = Array.from({ length: n }, (_, i) => (i % 3 === 2 ? { metadata: { namespace: `ns${i}` } } : { metadata: { namespace: 'ns', name: `svc${i}` }, spec: { ports: [{ name: 'http', port: 80 }] } }));
      const here = convertPage('Service', page(items).toString()) as ConvertedPage;
      expect(here.skipped.length).toBeGreaterThan(PAGE_BATCH / 2);
      const read = await reader.read('Service', page(items), 'list services');
      expect(read.items).toHaveLength(here.items.length);
      expect(read.items.map((s) => s.name)).toEqual(here.items.map((s) => s.name));
      expect(read.skipped).toEqual(here.skipped);
      expect(read.resourceVersion).toBe('42');
      expect(read.continue).toBe('next');
      // And the next page, read after it on the same worker, is its own.
      const small = await reader.read('Service', page(services), 'list services');
      expect(small.items).toHaveLength(3);
    } finally {
      reader.close();
    }
  });

  it('gives what the main thread makes from the same page, read on a worker', async () => {
    const reader = new PageReader({ minWorkerBytes: 0, idleMs: 50 });
    try {
      for (const [kind, items] of [['Service', services], ['EndpointSlice', slices]] as const) {
        const here = convertPage(kind, page(items).toString()) as ConvertedPage;
        const read = await reader.read(kind, page(items), 'list things');
        expect(read).toEqual(here);
        expect(read.items.length).toBe(kind === 'Service' ? 3 : 4);
        expect(read.skipped).toHaveLength(1);
        if (kind === 'Service') expect((read.items[0] as { traffic?: unknown }).traffic).toEqual({ policy: 'failover', failover: ['b', 'a'] });
        expect(read.resourceVersion).toBe('42');
        expect(read.continue).toBe('next');
        // The values many objects repeat are this thread's shared ones.
        for (let i = 0; i < here.items.length; i++) {
          expect(read.items[i].ports).toBe(here.items[i].ports);
          expect(read.items[i].namespace).toBe(here.items[i].namespace);
        }
      }
      const [web, webB, big, empty] = (await reader.read('EndpointSlice', page(slices), 'list things')).items as Array<{ zones: readonly string[]; addresses: readonly string[] }>;
      const again = convertPage('EndpointSlice', page(slices).toString()) as ConvertedPage;
      expect(web.zones).toBe((again.items[0] as typeof web).zones);
      expect(Object.isFrozen(web.zones) && Object.isFrozen(web.addresses) === false).toBe(true);
      expect(webB.addresses).toEqual(['2001:db8::1']);
      expect(big.zones).toHaveLength(40);
      expect(Object.isFrozen(big.zones)).toBe(true);
      expect(empty.addresses).toBe((again.items[3] as typeof empty).addresses);
      expect(reader.pagesOnWorker).toBe(3);
      expect(reader.workersStarted).toBe(1);
    } finally {
      reader.close();
    }
  });

  it('reads small pages on the calling thread, and stops an idle worker, then trims the allocator', async () => {
    let bursts = 0;
    const reader = new PageReader({ minWorkerBytes: 4096, idleMs: 50, afterBurst: () => bursts++ });
    try {
      expect((await reader.read('Service', page(services.slice(0, 2)), 'list services')).items).toHaveLength(2);
      expect(reader.workersStarted).toBe(0);
      const many = Array.from({ length: 150 }, (_, i) => ({ metadata: { namespace: 'ns', name: `s${i}` } }));
      expect((await reader.read('Service', page(many), 'list services')).items).toHaveLength(150);
      expect(reader.pagesOnWorker).toBe(1);
      expect(reader.running).toBe(true);
      // A page answered is not the end of the burst: the next may come within idleMs.
      expect(bursts).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      expect(reader.running).toBe(false);
      expect(bursts).toBe(1);
      // The next big page starts another.
      await reader.read('Service', page(many), 'list services');
      expect(reader.workersStarted).toBe(2);
    } finally {
      reader.close();
    }
  });

  it('does not trim when a new burst began while the idle worker stopped; its own end trims once', async () => {
    let trims = 0;
    let trimmedWhileBusy = false;
    const reader: PageReader = new PageReader({
      minWorkerBytes: 4096,
      idleMs: 20,
      afterBurst: () => {
        trims++;
        trimmedWhileBusy ||= reader.running;
      },
    });
    // A page's own buffer moves to the worker: one per read.
    const many = () => page(Array.from({ length: 150 }, (_, i) => ({ metadata: { namespace: 'ns', name: `s${i}` } })));
    // The moment the idle worker is let go (its thread still stopping), the next page arrives: in
    // the same turn, as stopping can take no less. Waiting for `running` to turn false and then
    // reading let a busy machine's worker stop, and its burst's trim run, before the next page.
    const internals = reader as unknown as { stopWorker(worker: unknown): void };
    const stopWorker = internals.stopWorker.bind(reader);
    let next: Promise<unknown> | undefined;
    internals.stopWorker = (worker) => {
      stopWorker(worker);
      next ??= reader.read('Service', many(), 'list services');
    };
    try {
      await reader.read('Service', many(), 'list services');
      while (!next) await new Promise((r) => setTimeout(r, 5));
      await next;
      expect(reader.workersStarted).toBe(2);
      await new Promise((r) => setTimeout(r, 300));
      expect(reader.running).toBe(false);
      expect(trimmedWhileBusy).toBe(false);
      expect(trims).toBe(1);
    } finally {
      reader.close();
    }
  });

  it('fails a page that is not a list as the main thread does', async () => {
    const reader = new PageReader({ minWorkerBytes: 0 });
    try {
      for (const onWorker of [true, false]) {
        const r = onWorker ? reader : new PageReader({ minWorkerBytes: 1 << 30 });
        await expect(r.read('Service', Buffer.from('{"items": [1, 2'), 'list services')).rejects.toThrow(new ApiError('list services: the answer is not JSON', 'protocol'));
        await expect(r.read('EndpointSlice', Buffer.from('{"items": {}}'), 'list endpointslices')).rejects.toThrow('list endpointslices: the answer is not a list');
        const err = await r.read('Service', Buffer.from('[]'), 'list services').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ApiError);
        expect((err as ApiError).category).toBe('protocol');
      }
      // A page without a position has none.
      const bare = await reader.read('Service', page([], {}), 'list services');
      expect([bare.resourceVersion, bare.continue]).toEqual([undefined, undefined]);
    } finally {
      reader.close();
    }
  });

  it('reads pages on the calling thread from then on when no worker can start', async () => {
    const reader = new PageReader({ minWorkerBytes: 0, workerFile: join(tmpdir(), `fedns-no-such-directory-${process.pid}`, 'page-worker.js') });
    const first = await reader.read('Service', page(services), 'list services').catch((e: unknown) => e);
    expect(first).toBeInstanceOf(ApiError);
    expect((first as Error).message).toMatch(/^list services: the list page worker cannot start \(.+\); pages are read on the main thread from now on$/);
    const next = await reader.read('Service', page(services), 'list services');
    expect(next.items).toHaveLength(3);
    expect(reader.workersStarted).toBe(1);
    expect(reader.running).toBe(false);
  });

  it('reads pages on the calling thread when the platform refuses a worker at once', async () => {
    // A relative path without "./" is refused as the worker is made, not when it loads.
    const reader = new PageReader({ minWorkerBytes: 0, workerFile: 'page-worker.js' });
    expect((await reader.read('Service', page(services), 'list services')).items).toHaveLength(3);
    expect((await reader.read('Service', page(services), 'list services')).items).toHaveLength(3);
    expect(reader.running).toBe(false);
    expect(reader.pagesOnWorker).toBe(0);
  });

  it('hands the worker two pages at a time, so that its answers never pile up on the main thread', async () => {
    // Answers each page 30 ms after it came, saying how many it held at most.
    const counting = script(
      'counting.mjs',
      "let held = 0, most = 0;\nparentPort.postMessage({ ready: true });\nparentPort.on('message', (m) => { most = Math.max(most, ++held); setTimeout(() => { held--; parentPort.postMessage({ id: m.id, page: { items: [], skipped: [], resourceVersion: String(most) } }); }, 30); });",
    );
    const reader = new PageReader({ minWorkerBytes: 0, workerFile: counting });
    try {
      const pages = await Promise.all(Array.from({ length: 8 }, () => reader.read('Service', page([]), 'list services')));
      expect(pages.map((p) => p.resourceVersion)).toEqual(Array(8).fill('2'));
    } finally {
      reader.close();
    }
  });

  it('fails the pages a dying worker held, and starts a new one for the next page', async () => {
    const dies = script('dies.mjs', "parentPort.postMessage({ ready: true });\nparentPort.on('message', () => process.exit(7));");
    const reader = new PageReader({ minWorkerBytes: 0, workerFile: dies });
    const held = await Promise.allSettled([reader.read('Service', page(services), 'list services'), reader.read('EndpointSlice', page(slices), 'list endpointslices')]);
    expect(held.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'read'))).toEqual([
      'list services: the list page worker stopped (exit code 7)',
      'list endpointslices: the list page worker stopped (exit code 7)',
    ]);
    await expect(reader.read('Service', page(services), 'list services')).rejects.toThrow('the list page worker stopped');
    expect(reader.workersStarted).toBe(2);
  });

  it('reports a defect in the worker as an error of its page only', async () => {
    const buggy = script(
      'buggy.mjs',
      "parentPort.postMessage({ ready: true });\nparentPort.on('message', (m) => parentPort.postMessage(m.kind === 'Service' ? { id: m.id, defect: 'TypeError: boom' } : { id: m.id, page: { items: [], skipped: [], resourceVersion: '7' } }));",
    );
    const reader = new PageReader({ minWorkerBytes: 0, workerFile: buggy });
    try {
      const [svc, eps] = await Promise.allSettled([reader.read('Service', page(services), 'list services'), reader.read('EndpointSlice', page([]), 'list endpointslices')]);
      expect(svc.status === 'rejected' && (svc.reason as Error).message).toBe('list services: reading the page failed: TypeError: boom');
      expect(svc.status === 'rejected' && svc.reason instanceof ApiError).toBe(false);
      expect(eps.status === 'fulfilled' && eps.value.resourceVersion).toBe('7');
      expect(reader.workersStarted).toBe(1);
    } finally {
      reader.close();
    }
  });

  it('reads a body that shares its memory with other buffers without taking that memory', async () => {
    const reader = new PageReader({ minWorkerBytes: 0 });
    try {
      const text = JSON.stringify({ metadata: { resourceVersion: '1' }, items: [{ metadata: { namespace: 'ns', name: 'a' } }] });
      const whole = Buffer.from(`xx${text}yy`);
      const body = whole.subarray(2, 2 + Buffer.byteLength(text));
      expect((await reader.read('Service', body, 'list services')).items.map((s) => s.name)).toEqual(['a']);
      expect(whole.toString()).toBe(`xx${text}yy`);
      // A buffer of its own moves to the worker.
      const own = Buffer.alloc(Buffer.byteLength(text), text);
      await reader.read('Service', own, 'list services');
      expect(own.byteLength).toBe(0);
    } finally {
      reader.close();
    }
  });
});
