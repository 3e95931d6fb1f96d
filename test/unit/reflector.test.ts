// The list+watch loop's own supervision, with a scripted transport (no HTTP).
import { PassThrough, Writable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ApiError, DEFAULT_TIMING, Reflector, type ReflectorSink, type Transport } from '../../src/cluster/supervisor.js';
import { pino } from 'pino';
import { slimService, type SlimService } from '../../src/cluster/objects.js';
import { Federation } from '../../src/federation/federation.js';
import { testFederationSettings } from '../support/federation.js';
import { until } from '../support/reflector.js';

describe('Reflector supervision', () => {
  it('a loop that throws (here: the sink, while reporting a failure) is restarted and lists again', async () => {
    let lists = 0;
    const streams: PassThrough[] = [];
    const transport: Transport = {
      async getJson() {
        lists++;
        if (lists === 1) throw new ApiError('list services: API server error (503)', 'http', 503);
        return { items: [{ metadata: { name: 'a', resourceVersion: '5' } }], metadata: { resourceVersion: '5' } };
      },
      async openStream() {
        const s = new PassThrough();
        streams.push(s);
        return { response: s as unknown as IncomingMessage, abort: () => s.destroy() };
      },
    };
    const failures: string[] = [];
    let failedThrows = true;
    let synced = 0;
    const sink: ReflectorSink = {
      replace: () => {},
      event: () => {},
      flush: () => {},
      synced: () => synced++,
      failed: (reason) => {
        failures.push(reason);
        if (failedThrows) {
          failedThrows = false;
          throw new Error('sink broke');
        }
      },
      restarted: () => {},
    };
    const logs: string[] = [];
    const log = pino({ level: 'error' }, new Writable({ write: (line, _enc, cb) => (logs.push(JSON.parse(String(line)).msg), cb()) }));
    const r = new Reflector({ kind: 'Service', path: '/api/v1/services', plural: 'services' }, transport, sink, { ...DEFAULT_TIMING, restartIntervalMs: 5 }, log);
    r.start();
    await until(() => synced > 0 && streams.length > 0);
    expect(logs).toContain('list/watch loop crashed; restarting it');
    expect(failures).toEqual(['list services: API server error (503)', 'internal error: sink broke']);
    expect(lists).toBe(2);
    expect(r.healthy).toBe(true);
    await r.stop();
  });
});

describe('Reflector pacing and blind spells', () => {
  const silentLog = pino({ level: 'silent' });

  /** A transport that lists fine and whose watches end as soon as they open (no line, no error). */
  function closingWatches() {
    const calls = { lists: 0, watches: [] as number[] };
    const transport: Transport = {
      async getJson() {
        calls.lists++;
        return { items: [], metadata: { resourceVersion: '7' } };
      },
      async openStream() {
        calls.watches.push(Date.now());
        const s = new PassThrough();
        setImmediate(() => s.end());
        return { response: s as unknown as IncomingMessage, abort: () => s.destroy() };
      },
    };
    return { calls, transport };
  }

  function recordingSink() {
    const events = { failed: [] as string[], synced: 0 };
    const sink: ReflectorSink = {
      replace: () => {},
      event: () => {},
      flush: () => {},
      synced: () => events.synced++,
      failed: (reason) => events.failed.push(reason),
      restarted: () => {},
    };
    return { events, sink };
  }

  it('watches that end at once are restarted no faster than restartIntervalMs, and the resource turns blind after staleAfterMs', async () => {
    const { calls, transport } = closingWatches();
    const { events, sink } = recordingSink();
    const r = new Reflector({ kind: 'Service', path: '/api/v1/services', plural: 'services' }, transport, sink, { ...DEFAULT_TIMING, restartIntervalMs: 100, staleAfterMs: 600 }, silentLog);
    r.start();
    await until(() => events.failed.length > 0, 3000);
    await r.stop();
    expect(events.synced).toBe(1); // the list; no watch ever worked
    expect(events.failed[0]).toMatch(/^services: no working list or watch for 0\.6 s \(last: watch ended early\)$/);
    expect(r.healthy).toBe(false);
    // About 600 ms at one restart per 100-125 ms: 5 to 7 watches, where no pacing makes thousands.
    expect(calls.watches.length).toBeGreaterThanOrEqual(3);
    expect(calls.watches.length).toBeLessThanOrEqual(9);
    const gaps = calls.watches.slice(1).map((t, i) => t - calls.watches[i]);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(95);
    expect(calls.lists).toBe(1); // a watch that ends resumes from its resourceVersion
  });

  it('a watch that stays open works: never blind, and healthy again after a blind spell', async () => {
    let closeAtOnce = true;
    const open: PassThrough[] = [];
    const transport: Transport = {
      async getJson() {
        return { items: [], metadata: { resourceVersion: '7' } };
      },
      async openStream() {
        const s = new PassThrough();
        if (closeAtOnce) setImmediate(() => s.end());
        else open.push(s);
        return { response: s as unknown as IncomingMessage, abort: () => s.destroy() };
      },
    };
    const { events, sink } = recordingSink();
    const r = new Reflector({ kind: 'Service', path: '/api/v1/services', plural: 'services' }, transport, sink, { ...DEFAULT_TIMING, restartIntervalMs: 50, staleAfterMs: 300 }, silentLog);
    r.start();
    await until(() => events.failed.length > 0, 3000);
    closeAtOnce = false;
    // Open for a third of staleAfterMs without a line: it works.
    await until(() => r.healthy, 3000);
    expect(events.synced).toBe(2);
    await new Promise((res) => setTimeout(res, 600));
    expect(events.failed).toHaveLength(1);
    expect(r.healthy).toBe(true);
    await r.stop();
    for (const s of open) s.destroy();
  });
});

describe('Reflector: a watch that never answers', () => {
  it('after a good list, a watch request left hanging makes the resource blind within staleAfterMs (not the request timeout)', async () => {
    const transport: Transport = {
      async getJson() {
        return { items: [], metadata: { resourceVersion: '7' } };
      },
      openStream(_path, _query, signal) {
        return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new ApiError('stopped', 'aborted'))));
      },
    };
    const failed: string[] = [];
    const sink: ReflectorSink = { replace: () => {}, event: () => {}, flush: () => {}, synced: () => {}, failed: (r) => failed.push(r), restarted: () => {} };
    const r = new Reflector({ kind: 'Service', path: '/api/v1/services', plural: 'services' }, transport, sink, { ...DEFAULT_TIMING, staleAfterMs: 300 }, pino({ level: 'silent' }));
    const started = Date.now();
    r.start();
    await until(() => failed.length > 0, 3000);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(failed).toEqual(['services: no working list or watch for 0.3 s (last: listed; the watch has not answered)']);
    await r.stop();
  });
});

describe('Reflector: a first list', () => {
  it('adds its pages as they arrive; a list that fails halfway leaves them, and the next list removes those it does not have', async () => {
    const fed = new Federation(testFederationSettings());
    const state = fed.addCluster({ name: 'one', region: 'r1', zones: ['z1'], addressMode: 'endpoints', gracePeriod: 300 });
    const service = (name: string) => ({ metadata: { namespace: 'ns', name, resourceVersion: '5' }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } });
    let lists = 0;
    let releaseSecondPage!: () => void;
    const secondPageAsked = new Promise<void>((asked) => (releaseSecondPage = asked));
    let heldWhenSecondPageAsked: string[] = [];
    let failSecondPage!: () => void;
    const secondPageFails = new Promise<void>((r) => (failSecondPage = r));
    const transport: Transport = {
      async getJson(_path, query) {
        lists++;
        if (lists === 1) return { items: [service('a'), service('b')], metadata: { resourceVersion: '5', continue: 'page2' } };
        if (query?.continue === 'page2') {
          heldWhenSecondPageAsked = [...state.services.keys()].sort();
          releaseSecondPage();
          await secondPageFails;
          throw new ApiError('list services: API server error (500)', 'http', 500);
        }
        // The list after the failure: b and c, in one page.
        return { items: [service('b'), service('c')], metadata: { resourceVersion: '9' } };
      },
      async openStream() {
        const s = new PassThrough();
        return { response: s as unknown as IncomingMessage, abort: () => s.destroy() };
      },
    };
    const appended: boolean[] = [];
    let synced = 0;
    const sink: ReflectorSink = {
      convert: (o) => slimService(o),
      replace: (items) => state.replaceKindSliced('Service', items as SlimService[]),
      appendsPages: () => {
        appended.push(state.count('Service') === 0);
        return appended.at(-1)!;
      },
      addPage: (items) => state.addSliced('Service', items as SlimService[]),
      event: () => {},
      flush: () => state.flush(),
      synced: () => synced++,
      failed: () => {},
      restarted: () => {},
    };
    const r = new Reflector({ kind: 'Service', path: '/api/v1/services', plural: 'services' }, transport, sink, { ...DEFAULT_TIMING, restartIntervalMs: 5 }, pino({ level: 'silent' }));
    r.start();
    await secondPageAsked;
    // The first page is the cluster's before the second is asked for.
    expect(heldWhenSecondPageAsked).toEqual(['ns/a', 'ns/b']);
    expect(synced).toBe(0);
    failSecondPage();
    await until(() => synced > 0);
    // The second list replaced (the kind held a and b): a, which it does not have, is gone.
    expect(appended).toEqual([true, false]);
    expect([...state.services.keys()].sort()).toEqual(['ns/b', 'ns/c']);
    await r.stop();
  });
});

describe('Reflector: pages added as they come', () => {
  const service = (name: string) => ({ metadata: { namespace: 'ns', name, resourceVersion: '5' }, spec: {} });

  function appendingSink(held: Set<string>, calls: string[]): ReflectorSink {
    return {
      convert: (o) => (o.metadata as { name: string }).name,
      replace: (items) => void calls.push(`replace ${(items as string[]).join(',')}`),
      appendsPages: () => held.size === 0,
      addPage: async (items) => {
        calls.push(`add ${(items as string[]).join(',')}`);
        for (const i of items as string[]) held.add(i);
      },
      event: () => {},
      flush: () => void calls.push('flush'),
      synced: () => void calls.push('synced'),
      failed: (reason) => void calls.push(`failed ${reason}`),
      restarted: () => {},
    };
  }

  it('a complete list: every page added, no replace, then synced and watched from its resourceVersion', async () => {
    const watchedFrom: (string | undefined)[] = [];
    const transport: Transport = {
      async getJson(_path, query) {
        return query?.continue === 'p2'
          ? { items: [service('c')], metadata: { resourceVersion: '7' } }
          : { items: [service('a'), service('b')], metadata: { resourceVersion: '7', continue: 'p2' } };
      },
      async openStream(_path, query) {
        watchedFrom.push(query?.resourceVersion);
        const s = new PassThrough();
        return { response: s as unknown as IncomingMessage, abort: () => s.destroy() };
      },
    };
    const held = new Set<string>();
    const calls: string[] = [];
    const r = new Reflector({ kind: 'Service', path: '/api/v1/services', plural: 'services' }, transport, appendingSink(held, calls), DEFAULT_TIMING, pino({ level: 'silent' }));
    r.start();
    await until(() => watchedFrom.length > 0);
    expect(calls).toEqual(['add a,b', 'add c', 'flush', 'synced']);
    expect(watchedFrom).toEqual(['7']);
    await r.stop();
  });

  it('a page without a resourceVersion is not added: the list fails as a whole', async () => {
    let lists = 0;
    const transport: Transport = {
      async getJson() {
        lists++;
        return { items: [service('a')], metadata: {} };
      },
      async openStream() {
        throw new Error('no watch without a list');
      },
    };
    const held = new Set<string>();
    const calls: string[] = [];
    const r = new Reflector({ kind: 'Service', path: '/api/v1/services', plural: 'services' }, transport, appendingSink(held, calls), { ...DEFAULT_TIMING, restartIntervalMs: 5 }, pino({ level: 'silent' }));
    r.start();
    await until(() => lists >= 2);
    await r.stop();
    expect(held.size).toBe(0);
    expect(calls.filter((c) => !c.startsWith('failed'))).toEqual([]);
    expect(calls[0]).toMatch(/no resourceVersion/);
  });
});
