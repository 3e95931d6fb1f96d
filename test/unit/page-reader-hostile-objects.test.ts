// Pages of hostile and random objects read on the page worker give what the main thread makes
// from the same text: the same values, the same shared (interned, frozen) lists, and no mutable
// value shared between objects that the main thread would give each its own.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { convertPage, type ConvertedPage, type PageKind } from '../../src/cluster/list-page.js';
import { PageReader } from '../../src/cluster/page-reader.js';
import { ApiError } from '../../src/cluster/supervisor.js';
import { prng } from '../support/corpus.js';
import { workerScripts } from '../support/worker-scripts.js';

// JSON text built directly: keys such as "__proto__", repeated keys, numbers JSON.stringify cannot write.
type J = string;
const s = (v: string): J => JSON.stringify(v);
const obj = (pairs: Array<[string, J]>): J => `{${pairs.map(([k, v]) => `${s(k)}:${v}`).join(',')}}`;
const list = (items: J[]): J => `[${items.join(',')}]`;

const STRINGS = [
  '', 'a', 'A', 'web', 'Web', 'ns', 'NS', 'x'.repeat(62), 'x'.repeat(63), 'y'.repeat(64), 'z'.repeat(300),
  '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', '\ud800', 'a\udc00b', '\u0000', 'é', '\ufeff',
  'a..b', '-a', 'None', 'TCP', 'UDP', 'SCTP', 'tcp', 'Tcp', 'ICMP', 'http', 'dns', 'Not A Label',
  '10.0.0.1', '10.0.0.2', '2001:DB8:0::1', '2001:db8::1', '::ffff:1.2.3.4', '1.2.3', 'z1', 'z2', 'Z1', 'Bad Zone',
  '30', ' 30 ', '-0', '1e3', '99999999999', '2147483647', 'nearest', 'failover', 'all', 'weighted', 'a,b', 'b,a', 'a=1,b=2', 'a=1,a=2',
  '7', '0', '1001', 'lb.example.net', 'bad..name', 'LB.Example.NET.', '2026-01-02T03:04:05Z', 'not a date', 'IPv4', 'IPv6', 'FQDN',
  'kubernetes.io/service-name', 'fedns.io/ttl', 'fedns.io/policy',
];
const NUMBERS = ['0', '-0', '1', '80', '443', '65535', '65536', '1.5', '-1', '1e308', '1e400', '-1e400', '1e-400', '12345678901234567890', '80.0', '8e1'];
const ANNOTATION_KEYS = ['fedns.io/ttl', 'fedns.io/policy', 'fedns.io/failover', 'fedns.io/weights', 'fedns.io/max-addresses', 'endpoints.kubernetes.io/last-change-trigger-time', '__proto__', 'constructor'];
const LABEL_KEYS = ['app', 'kubernetes.io/service-name', '__proto__', 'constructor', 'toString', '0', '1', '10', '-1', 'valueOf', ''];

function generator(seed: number) {
  const r = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)];
  const chance = (p: number) => r() < p;
  const str = (): J => s(pick(STRINGS));
  const anything = (depth = 0): J => {
    const k = r();
    if (k < 0.35) return str();
    if (k < 0.55) return pick(NUMBERS);
    if (k < 0.62) return pick(['true', 'false', 'null']);
    if (depth > 2) return '{}';
    if (k < 0.8) return list(Array.from({ length: Math.floor(r() * 3) }, () => anything(depth + 1)));
    return obj(Array.from({ length: Math.floor(r() * 3) }, () => [pick(STRINGS), anything(depth + 1)]));
  };
  /** Mostly a plausible value, sometimes anything. */
  const or = (plausible: () => J, p = 0.85): J => (chance(p) ? plausible() : anything());
  const keyed = (keys: readonly string[], value: () => J): J => obj(Array.from({ length: Math.floor(r() * 4) }, () => [pick(keys), value()]));
  const metadata = (): J => {
    const pairs: Array<[string, J]> = [];
    if (chance(0.95)) pairs.push(['namespace', or(() => s(pick(['ns', 'NS', 'other', 'a', 'Not_A_Label', '__proto__'])))]);
    if (chance(0.97)) pairs.push(['name', or(() => s(pick(['web', 'Web', 'api', 'db', 'x'.repeat(63), 'y'.repeat(64), 'web-a', 'web-b', 'constructor'])))]);
    if (chance(0.6)) pairs.push(['labels', or(() => keyed(LABEL_KEYS, () => or(() => s(pick(['web', 'Web', 'api', 'db', 'x', 'y'.repeat(64)])))))]);
    if (chance(0.6)) pairs.push(['annotations', or(() => keyed(ANNOTATION_KEYS, str))]);
    if (chance(0.05)) pairs.push(['name', str()]); // a repeated key: the last one counts
    if (chance(0.05)) pairs.push(['__proto__', obj([['name', s('polluted')]])]);
    return obj(pairs);
  };
  const port = (): J =>
    or(() =>
      obj([
        ...(chance(0.9) ? ([['name', or(() => s(pick(['http', 'dns', 'HTTP', 'grpc', 'Not A Label', 'x'.repeat(63), '__proto__'])))]] as Array<[string, J]>) : []),
        ['port', or(() => pick(['80', '53', '443', '8080', '0', '65536', '"80"', '1.5', '-0', '1e400']))],
        ...(chance(0.5) ? ([['protocol', or(() => s(pick(['TCP', 'UDP', 'SCTP', 'tcp', 'ICMP', 'TCPX'])))]] as Array<[string, J]>) : []),
      ]),
    );
  const ports = (): J => or(() => list(Array.from({ length: Math.floor(r() * 4) }, port)));
  const address = (): J => or(() => s(pick(['10.0.0.1', '10.0.0.2', '10.0.0.3', '2001:DB8:0::1', '2001:db8::1', 'fe80::1', 'lb.example.net', '1.2.3'])));
  const service = (): J => {
    const pairs: Array<[string, J]> = [['metadata', or(metadata, 0.97)]];
    if (chance(0.9))
      pairs.push([
        'spec',
        or(() =>
          obj([
            ...(chance(0.3) ? ([['clusterIP', or(() => s(pick(['None', '10.96.0.1', 'none'])))]] as Array<[string, J]>) : []),
            ['ports', ports()],
            ...(chance(0.3) ? ([['externalIPs', or(() => list(Array.from({ length: Math.floor(r() * 3) }, address)))]] as Array<[string, J]>) : []),
          ]),
        ),
      ]);
    if (chance(0.4))
      pairs.push([
        'status',
        or(() => obj([['loadBalancer', or(() => obj([['ingress', or(() => list(Array.from({ length: Math.floor(r() * 4) }, () => or(() => obj([[pick(['ip', 'hostname']), chance(0.5) ? address() : s(pick(['lb.example.net', 'LB.Example.NET', 'bad..name', 'x'.repeat(64) + '.net']))]])))))]]))]])),
      ]);
    return obj(pairs);
  };
  const endpoint = (): J =>
    or(() => {
      const pairs: Array<[string, J]> = [['addresses', or(() => list(Array.from({ length: Math.floor(r() * 3) }, address)))]];
      if (chance(0.7)) pairs.push(['conditions', or(() => obj([[pick(['ready', 'terminating', 'serving']), or(() => pick(['true', 'false', 'null', '"true"']))]]))]);
      if (chance(0.6)) pairs.push(['zone', or(() => s(pick(['z1', 'z2', 'z3', 'Z1', 'Bad Zone', '', '__proto__'])))]);
      if (chance(0.3)) pairs.push(['hostname', or(() => s(pick(['pod-1', 'pod-2', 'Pod-3', 'bad host', ''])))]);
      return obj(pairs);
    });
  const slice = (): J => {
    const pairs: Array<[string, J]> = [['metadata', or(metadata, 0.97)]];
    if (chance(0.8)) pairs.push(['addressType', or(() => s(pick(['IPv4', 'IPv6', 'FQDN', 'ipv4', 'other'])))]);
    if (chance(0.7)) pairs.push(['ports', ports()]);
    const n = chance(0.1) ? 33 + Math.floor(r() * 10) : Math.floor(r() * 5);
    if (chance(0.9)) pairs.push(['endpoints', or(() => list(Array.from({ length: n }, endpoint)))]);
    return obj(pairs);
  };
  const page = (kind: PageKind, n: number): string => {
    const items = Array.from({ length: n }, () => (chance(0.95) ? (kind === 'Service' ? service() : slice()) : anything()));
    const md = chance(0.9) ? obj([['resourceVersion', or(() => s(pick(['1', '42', ''])))], ['continue', or(() => s(pick(['next', ''])))]]) : anything();
    return obj([['kind', s('List')], ['metadata', md], ['items', list(items)]]);
  };
  return { page };
}

/** Where a and b differ (values, keys, prototypes, holes, -0), or undefined. */
function difference(a: unknown, b: unknown, path: string): string | undefined {
  if (typeof a !== typeof b) return `${path}: ${typeof a} vs ${typeof b}`;
  if (a === null || typeof a !== 'object') return Object.is(a, b) ? undefined : `${path}: ${String(a)} vs ${String(b)}`;
  const x = a as Record<string | symbol, unknown>;
  const y = b as Record<string | symbol, unknown>;
  if (y === null) return `${path}: object vs null`;
  if (Array.isArray(x) !== Array.isArray(y)) return `${path}: array vs not`;
  if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return `${path}: prototypes differ`;
  const kx = Reflect.ownKeys(x);
  const ky = Reflect.ownKeys(y);
  if (kx.length !== ky.length || kx.some((k, i) => k !== ky[i])) return `${path}: keys ${kx.map(String).join(',')} vs ${ky.map(String).join(',')}`;
  for (const k of kx) {
    const d = difference(x[k], y[k], `${path}.${String(k)}`);
    if (d) return d;
  }
  return undefined;
}

/** Every object reachable from each item, with its path. */
function reachable(items: unknown[]): Array<{ o: object; item: number; path: string[] }> {
  const out: Array<{ o: object; item: number; path: string[] }> = [];
  const walk = (v: unknown, item: number, path: string[]) => {
    if (!v || typeof v !== 'object') return;
    out.push({ o: v, item, path });
    for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], item, [...path, k]);
  };
  items.forEach((it, i) => walk(it, i, []));
  return out;
}
const at = (items: unknown[], item: number, path: string[]): unknown => path.reduce((v, k) => (v as Record<string, unknown>)[k], items[item]);

describe('pages read on the page worker (differential)', () => {
  it('give what the main thread makes, for random and hostile pages', async () => {
    const reader = new PageReader({ minWorkerBytes: 0, idleMs: 1000 });
    try {
      for (let seed = 1; seed <= 400; seed++) {
        const kind: PageKind = seed % 2 ? 'Service' : 'EndpointSlice';
        const text = generator(seed).page(kind, 1 + (seed % 40));
        const here = convertPage(kind, text);
        const read = await reader.read(kind, Buffer.from(text), 'list things').catch((e: Error) => e.message);
        if (typeof here === 'string') {
          expect(read, `seed ${seed}`).toBe(`list things: the answer is ${here}`);
          continue;
        }
        const page = read as ConvertedPage;
        expect(difference(here, page, 'page'), `seed ${seed}`).toBeUndefined();
        const mine = page.items as unknown[];
        const theirs = here.items as unknown[];
        // The main thread's shared values (frozen: interned lists, empty values) are the ones adopted.
        for (const { o, item, path } of reachable(theirs)) {
          // A big slice's zone list is its own (frozen, not shared).
          const own = path.at(-1) === 'zones' && (o as unknown[]).length > 32;
          if (Object.isFrozen(o) && path.length && !own) expect(at(mine, item, path), `seed ${seed} item ${item} ${path.join('.')} is the shared one`).toBe(o);
        }
        // A mutable value two objects (or two places) hold is one the main thread shares the same way.
        const places = new Map<object, Array<{ item: number; path: string[] }>>();
        for (const { o, item, path } of reachable(mine)) {
          if (Object.isFrozen(o)) continue;
          const p = places.get(o) ?? [];
          p.push({ item, path });
          places.set(o, p);
        }
        for (const p of places.values()) {
          for (const q of p.slice(1)) expect(at(theirs, q.item, q.path), `seed ${seed}: item ${q.item} ${q.path.join('.')} shared with item ${p[0].item} ${p[0].path.join('.')}`).toBe(at(theirs, p[0].item, p[0].path));
        }
      }
    } finally {
      reader.close();
    }
  }, 120_000);
});

describe('the page reader, when its worker goes wrong', () => {
  const script = workerScripts('fedns-page-reader-hostile-');
  const page = Buffer.from(JSON.stringify({ metadata: { resourceVersion: '1' }, items: [{ metadata: { namespace: 'ns', name: 'a' } }] }));

  it('stops a worker that holds a page without answering, failing the pages it held', async () => {
    const stuck = script('stuck.mjs', "parentPort.postMessage({ ready: true });\nparentPort.on('message', () => { for (;;); });");
    const reader = new PageReader({ minWorkerBytes: 0, workerFile: stuck, stuckMs: 200 });
    try {
      const held = await Promise.allSettled([reader.read('Service', Buffer.from(page), 'list services'), reader.read('EndpointSlice', Buffer.from(page), 'list endpointslices')]);
      expect(held.map((r) => (r.status === 'rejected' && r.reason instanceof ApiError ? r.reason.message : 'not an ApiError'))).toEqual([
        'list services: the list page worker stopped (no answer for 0.2 s)',
        'list endpointslices: the list page worker stopped (no answer for 0.2 s)',
      ]);
      expect(reader.running).toBe(false);
      // The next page starts another worker.
      await expect(reader.read('Service', Buffer.from(page), 'list services')).rejects.toThrow('no answer for 0.2 s');
      expect(reader.workersStarted).toBe(2);
    } finally {
      reader.close();
    }
  }, 10_000);

  it('keeps a worker that answers slowly but steadily', async () => {
    // Four pages of 400 ms each: longer than stuckMs in all, each answer within it (with room for a slow start).
    const slow = script('slow.mjs', "parentPort.postMessage({ ready: true });\nparentPort.on('message', (m) => { const end = Date.now() + 400; while (Date.now() < end); parentPort.postMessage({ id: m.id, page: { items: [], skipped: [], resourceVersion: '1' } }); });");
    const reader = new PageReader({ minWorkerBytes: 0, workerFile: slow, stuckMs: 1000 });
    try {
      const pages = await Promise.all(Array.from({ length: 4 }, () => reader.read('Service', Buffer.from(page), 'list services')));
      expect(pages.map((p) => p.resourceVersion)).toEqual(['1', '1', '1', '1']);
      expect(reader.workersStarted).toBe(1);
    } finally {
      reader.close();
    }
  });

  it('names a defect of the worker in one line, without its stack', async () => {
    // The real worker, with a defect: Array.isArray fails in it.
    const worker = fileURLToPath(new URL('../../dist/src/cluster/page-worker.js', import.meta.url));
    const buggy = script('defect.mjs', `Array.isArray = () => { throw new RangeError('too deep'); };\nawait import(${JSON.stringify(pathToFileURL(worker).href)});`);
    const reader = new PageReader({ minWorkerBytes: 0, workerFile: buggy });
    try {
      const err = await reader.read('Service', Buffer.from(page), 'list services').catch((e: Error) => e);
      expect((err as Error).message).toBe('list services: reading the page failed: RangeError: too deep');
    } finally {
      reader.close();
    }
  });
});

describe('an object with a value nested deep (a hostile API server)', () => {
  const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
  const text = `{"metadata":{"resourceVersion":"1"},"items":[
    {"metadata":{"namespace":"ns","name":"ttl","annotations":{"fedns.io/ttl":${deep}}}},
    {"metadata":{"namespace":"ns","name":"policy","annotations":{"fedns.io/policy":${deep}}}},
    {"metadata":{"namespace":"ns","name":"port"},"spec":{"ports":[{"name":"http","port":${deep}},{"name":"dns","port":53}]}},
    {"metadata":{"namespace":"ns","name":"fine"}}]}`;

  it('is read without that value, and the rest of its page with it', async () => {
    const here = convertPage('Service', text) as ConvertedPage;
    expect(here.items.map((s) => s.name)).toEqual(['ttl', 'policy', 'port', 'fine']);
    expect(here.items.map((s) => (s as { ignored?: Array<{ reason: string }> }).ignored?.map((i) => i.reason))).toEqual([['ttl annotation'], ['policy annotation'], undefined, undefined]);
    expect(here.items[2].ports).toEqual([{ name: 'dns', port: 53, protocol: 'tcp' }]);
    const reader = new PageReader({ minWorkerBytes: 0 });
    try {
      expect(difference(here, await reader.read('Service', Buffer.from(text), 'list services'), 'page')).toBeUndefined();
    } finally {
      reader.close();
    }
  });
});
