// A re-list collects the objects the cluster already holds for those that did not change: the
// list's copies of them are dropped as they are read, not held beside the old ones until the list
// ends (at 100,000 services, a re-list of every cluster held two copies of everything at its end).
// A changed object still replaces the old one. Pages are read on the main thread (small ones)
// or on the page reader's worker (big ones, page-reader.ts): both are run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PageReader } from '../../src/cluster/page-reader.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { eventuallyWith, kubeHarness, publish, QUICK_TIMING, same, svc, useKubeTiming, type Running } from '../support/kube-harness.js';

const { startFedns } = kubeHarness('fedns-kube-relist-');
const eventually = eventuallyWith({ timeoutMs: 10_000, pollMs: 10 });

describe.each([
  ['on the main thread', 64 * 1024],
  ['on the page worker', 0],
])('re-list, pages read %s', (_, minWorkerBytes) => {
  let api: FakeApiServer;
  let f: Running;
  const pageReader = new PageReader({ minWorkerBytes, idleMs: 100 });
  beforeAll(async () => {
    useKubeTiming({ ...QUICK_TIMING, pageReader });
    api = await FakeApiServer.start();
    publish(api, 'r', 'same', '192.0.2.1', '10.1.0.1');
    publish(api, 'r', 'moved', '192.0.2.2', '10.1.0.2');
    f = await startFedns([{ name: 'c', server: api }]);
    await eventually(() => f.answer('moved.r.fed.example.com.'), same(['192.0.2.2']), 'initial sync');
  });
  afterAll(async () => {
    await f?.stop();
    await api?.stop();
    pageReader.close();
  });

  it('keeps the objects it holds for unchanged ones and takes the changed ones', async () => {
    const state = f.fedns.federation.clusters.get('c')!;
    const service = state.services.get('r/same');
    const slice = state.slices.get('r/same-abcde');
    const movedBefore = state.services.get('r/moved');
    expect(service && slice && movedBefore).toBeTruthy();
    // What each list collected before it replaced the cluster's objects.
    const listed: { kind: string; items: unknown[] }[] = [];
    const replace = state.replaceKindSliced.bind(state);
    state.replaceKindSliced = (kind, items) => {
      listed.push({ kind, items });
      return replace(kind, items);
    };
    // Every new watch ends with 410: each change arrives by a list.
    const lists = api.requestCount({ verb: 'list' });
    const fault = api.expireNewWatches();
    try {
      api.endOpenWatches();
      api.apply(svc('r', 'moved', ['192.0.2.22']));
      await api.waitForRequests({ verb: 'list' }, lists + 4);
      await eventually(() => f.answer('moved.r.fed.example.com.'), same(['192.0.2.22']), 'the changed service by a re-list');
      // A list that began after the change is over (each kind re-lists after every expired watch).
      const after = api.requestCount({ verb: 'list' });
      await api.waitForRequests({ verb: 'list' }, after + 4);
      await eventually(() => state.health, (h) => h === 'live', 'live');
    } finally {
      fault.clear();
      state.replaceKindSliced = replace;
    }
    // The lists held the cluster's own objects for what did not change, not copies of them.
    const services = listed.filter((l) => l.kind === 'Service');
    const slices = listed.filter((l) => l.kind === 'EndpointSlice');
    expect(services.length).toBeGreaterThan(0);
    expect(slices.length).toBeGreaterThan(0);
    for (const l of services) expect(l.items.find((o) => (o as { name: string }).name === 'same')).toBe(service);
    for (const l of slices) expect(l.items.find((o) => (o as { name: string }).name === 'same-abcde')).toBe(slice);
    expect(state.services.get('r/same')).toBe(service);
    expect(state.slices.get('r/same-abcde')).toBe(slice);
    const moved = state.services.get('r/moved')!;
    expect(moved).not.toBe(movedBefore);
    expect(moved.lbAddresses).toEqual(['192.0.2.22']);
    expect(await f.answer('same.r.fed.example.com.')).toEqual(['192.0.2.1']);
    // Every page went where it was meant to: the first lists and at least two re-lists of each kind.
    if (minWorkerBytes === 0) expect(pageReader.pagesOnWorker).toBeGreaterThanOrEqual(6);
    else expect(pageReader.workersStarted).toBe(0);
  });
});
