// fedns_programming_latency_seconds ('programmed') against a paced service: a change counts once
// the services it changed answer it, not before, and not a pace later than that.
import { describe, expect, it } from 'vitest';
import { packSlice, type SlimEndpointSlice } from '../../src/cluster/objects.js';
import type { ClusterSettings } from '../../src/cluster/state.js';
import { Federation } from '../../src/federation/federation.js';
import { paceWide, seedWide, svc, testFederationSettings, thousandSlice, wideSlice } from '../support/federation.js';
import { eventually } from '../support/kube-harness.js';

const settings = (name: string): ClusterSettings => ({ name, region: 'r1', zones: [], addressMode: 'endpoints', gracePeriod: 300 });
const slice = (service: string, addr = '10.0.0.1'): SlimEndpointSlice =>
  packSlice({ namespace: 'ns', name: `${service}-x`, service, addressType: 'IPv4', ports: [], endpoints: [{ addresses: [addr], ready: true }] });

/**
 * A federation of 'ns/wide' (20,000 endpoints: too big to rebuild within a slice) and 100 small
 * services, with 'ns/wide' paced already when `paced` (paceWide) and not yet otherwise; and the
 * change times 'programmed' counts from then on.
 */
function pacedFederation(paced: boolean) {
  const fed = new Federation(testFederationSettings());
  const a = fed.addCluster(settings('a'));
  const small = Array.from({ length: 100 }, (_, i) => [svc(`s${i}`, []), slice(`s${i}`)]).flat();
  if (paced) paceWide(fed, a, small);
  else {
    seedWide(a, small);
    fed.rebuild();
  }
  expect(fed.pacedCount).toBe(paced ? 1 : 0);
  const programmed: number[] = [];
  fed.on('programmed', (_c, s) => programmed.push(...s));
  return { fed, a, programmed };
}

describe('programming latency of a paced service', () => {
  it('a change with no service (a manifest file re-read) that changes a held service is not counted before that service answers', async () => {
    const { fed, a, programmed } = pacedFederation(true);
    // What FilesClusterSource.adopting does: the file's change, for no service in particular.
    a.noteChange(Date.now());
    a.upsert('EndpointSlice', wideSlice(true));
    a.flush();
    fed.rebuildSoon();
    expect(fed.heldServices).toEqual(['ns/wide']);
    // The only service it changed does not answer it yet.
    expect(programmed).toEqual([]);
    // Counted once it is rebuilt.
    await eventually(() => programmed.length, (n) => n === 1, 'the file change counted', 20_000, 5);
    expect(fed.heldServices).toEqual([]);
    fed.close();
  }, 30_000);

  it('a change a slow rebuild answered is counted then, not held back for a later change to the same service', () => {
    const { fed, a, programmed } = pacedFederation(false);
    // c1: the wide service's second slow rebuild answers it (and paces the service). 100 other
    // services changed in the same turn are left for later slices: the slice is spent.
    const began = Date.now();
    a.upsert('EndpointSlice', { ...wideSlice(false), triggerTime: began });
    a.flush();
    for (let i = 0; i < 100; i++) a.upsert('EndpointSlice', slice(`s${i}`, '10.0.0.2'));
    a.flush();
    fed.rebuildSoon();
    expect(fed.pacedCount).toBe(1);
    // c2 to the same service, before the rest of the work is done: it is held.
    a.upsert('EndpointSlice', { ...wideSlice(true), triggerTime: Date.now() });
    a.flush();
    for (let n = 0; n < 1000 && programmed.length === 0; n++) fed.rebuildSoon();
    expect(fed.heldServices).toEqual(['ns/wide']);
    // c1 was answered by the rebuild before: counted now, without c2's wait for the pace.
    expect(programmed.length).toBe(1);
    fed.close();
  }, 30_000);
  it('a slice that moves from a held service to another is not counted before the held one answers', async () => {
    const { fed, a, programmed } = pacedFederation(true);
    // 'wide-19' now says it is s0's: s0 gains its endpoints at once, wide loses them at its pace.
    a.upsert('EndpointSlice', { ...thousandSlice('wide', 19), service: 's0', triggerTime: Date.now() });
    a.flush();
    fed.rebuildSoon();
    expect(fed.heldServices).toEqual(['ns/wide']);
    expect(programmed).toEqual([]);
    await eventually(() => programmed.length, (n) => n === 1, 'the move counted', 20_000, 5);
    expect(fed.heldServices).toEqual([]);
    fed.close();
  }, 30_000);
});
