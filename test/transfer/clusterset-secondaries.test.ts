/**
 * Both zones of one fedns (mcs.enabled: the federation zone and clusterset.local.) transferred by
 * standard secondaries (Knot DNS, NSD, BIND), each zone with its own serial, journal and NOTIFY:
 *  - the secondary gets both zones by AXFR when it starts, and answers the clusterset names as fedns;
 *  - a change to a service that is not exported moves only the federation zone's serial: the
 *    secondary's clusterset zone stays as it is, with no transfer of it;
 *  - a new exported service and an endpoint change in a member (its manifest files edited) move
 *    the clusterset zone's serial; the secondary is told by NOTIFY (the SOA refresh stays at
 *    3600 s) and follows by IXFR from the clusterset zone's journal, without a full transfer.
 * fedns_zone_transfers_total and fedns_notifies_total are read per zone (label `zone`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { masterFile } from '../../src/zone/masterfile.js';
import type { ZoneSnapshot } from '../../src/zone/snapshot.js';
import { parseZoneText } from '../support/corpus.js';
import { compareResults, digMany, digManyReasking } from '../support/dig.js';
import { freePort, requirePeer } from '../support/peers.js';
import { requireSecondary, startSecondary, type Secondary, type SecondaryKind } from '../support/secondaries.js';
import { API_SERVICE, startPrimary, writeAtomic, ZONE, type Primary } from './harness.js';

const CS = 'clusterset.local.';
const hasDig = requirePeer('dig');
const FLAGS = ['qr', 'aa', 'tc', 'rd', 'ra', 'ad', 'cd'];

/** Rewrites a demo manifest of `cluster` (a member-cluster change the files source reads). */
function edit(p: Primary, cluster: string, file: string, change: (text: string) => string): void {
  const path = join(p.dir, 'demo', cluster, file);
  const before = readFileSync(path, 'utf8');
  const after = change(before);
  expect(after).not.toBe(before);
  writeAtomic(path, after);
}

/** shop/api in alpha: a Service, its EndpointSlice and its ServiceExport. */
const API = `${API_SERVICE}  - apiVersion: multicluster.x-k8s.io/v1alpha1
    kind: ServiceExport
    metadata: { name: api, namespace: shop }
`;

/** The queries compared between fedns and the secondary: every owner of the clusterset zone, a few types, and negative answers. */
function clusterSetQueries(z: ZoneSnapshot): { name: string; type: string }[] {
  const owners = [...new Set(parseZoneText(masterFile(z)).records.map((r) => r.name.toLowerCase()))];
  const out = owners.flatMap((name) => ['A', 'AAAA', 'SRV', 'TXT', 'SOA', 'NS'].map((type) => ({ name, type })));
  out.push({ name: `nothing.${CS}`, type: 'A' }, { name: `svc.${CS}`, type: 'A' }, { name: `alpha.nginx.default.svc.${CS}`, type: 'A' });
  return out;
}

for (const kind of ['knot', 'nsd', 'bind'] as SecondaryKind[]) {
  describe.skipIf(!(hasDig && requireSecondary(kind)))(`${kind} as a secondary of both zones of fedns (mcs.enabled)`, () => {
    let primary: Primary;
    let secondary: Secondary;
    let fed0: number;
    let cs0: number;
    const csZone = () => primary.clusterSetZone()!;

    beforeAll(async () => {
      const port = await freePort();
      primary = await startPrimary({ demo: true, transfer: { allow: ['127.0.0.1'], notify: [`127.0.0.1:${port}`], notifyDelay: 0.1 } });
      fed0 = (await primary.settled()).serial;
      cs0 = csZone().serial;
      secondary = await startSecondary(kind, { zone: ZONE, moreZones: [CS], primaryPort: primary.port, port });
    });

    afterAll(async () => {
      if (process.env.FEDNS_SHOW_SECONDARY_OUTPUT === '1' && secondary) console.log(`--- ${secondary.name} output ---\n${secondary.output()}`);
      await secondary?.stop();
      await primary?.stop();
    });

    it('gets both zones by AXFR, each at its own serial, and answers the clusterset names as fedns does', async () => {
      expect(csZone().domain).toBe(CS);
      expect(await secondary.waitForSerial(fed0, 20_000)).toBe(fed0);
      expect(await secondary.waitForSerial(cs0, 20_000, 20, CS)).toBe(cs0);
      for (const zone of [ZONE, CS]) {
        const full = (await primary.transfers('AXFR', 'full', zone)) + (await primary.transfers('IXFR', 'full', zone));
        expect(full, zone).toBeGreaterThanOrEqual(1);
      }
      const queries = clusterSetQueries(csZone());
      expect(queries.length).toBeGreaterThan(20);
      const [ours, theirs] = await Promise.all([digMany('127.0.0.1', primary.port, queries, ['+tries=3', '+time=3']), digMany('127.0.0.1', secondary.port, queries, ['+tries=3', '+time=3'])]);
      const diffs = queries.flatMap((q, i) =>
        // NSD (minimal-responses) and BIND leave out some additional addresses: answer and authority compared in full.
        compareResults(ours[i], theirs[i], { labels: ['fedns', kind], flags: FLAGS, sections: ['answer', 'authority'] }).map((d) => `${q.name} ${q.type}: ${d}`),
      );
      expect(diffs).toEqual([]);
      const statuses = new Set(ours.map((r) => r.status));
      expect(statuses.has('NOERROR') && statuses.has('NXDOMAIN')).toBe(true);
      expect(ours.find((r, i) => queries[i].name === `nginx.default.svc.${CS}` && queries[i].type === 'A')?.answer.length).toBeGreaterThan(0);
    });

    it('a change to a service that is not exported moves only the federation zone serial', async () => {
      const csTransfers = (await primary.transfers('IXFR', 'incremental', CS)) + (await primary.transfers('AXFR', 'full', CS)) + (await primary.transfers('IXFR', 'full', CS));
      // billing (finance) in bravo has no ServiceExport.
      edit(primary, 'bravo', 'services.yaml', (t) => t.replace('ip: 198.51.100.30 }', 'ip: 198.51.100.31 }'));
      const changed = await primary.waitForZone((z) => masterFile(z).includes('198.51.100.31'), 10_000, 'the billing change');
      await primary.settled(300);
      expect(await secondary.waitForSerial(primary.zone().serial, 20_000)).toBe(primary.zone().serial);
      expect(changed.serial).not.toBe(fed0);
      expect(csZone().serial).toBe(cs0);
      expect(await secondary.serial(500, CS)).toBe(cs0);
      expect((await primary.transfers('IXFR', 'incremental', CS)) + (await primary.transfers('AXFR', 'full', CS)) + (await primary.transfers('IXFR', 'full', CS))).toBe(csTransfers);
    });

    it('a new exported service and an endpoint change reach the secondary by NOTIFY and IXFR of the clusterset zone', async () => {
      const fullBefore = (await primary.transfers('AXFR', 'full', CS)) + (await primary.transfers('IXFR', 'full', CS));
      const ixfrBefore = await primary.transfers('IXFR', 'incremental', CS);
      const ackBefore = await primary.notifies('acknowledged', CS);

      // 1. shop/api appears in alpha, exported.
      edit(primary, 'alpha', 'services.yaml', (t) => t.replace(/\s*$/, '\n') + API);
      const withApi = await primary.waitForZone(() => masterFile(csZone()).includes(`api.shop.svc.${CS}\t30\tIN\tA\t192.0.2.60`), 10_000, 'api in the clusterset zone');
      await primary.settled(300);
      const cs1 = csZone().serial;
      expect(cs1).not.toBe(cs0);
      expect(withApi.serial).not.toBe(fed0);
      expect(await secondary.waitForSerial(cs1, 20_000, 20, CS)).toBe(cs1);
      await primary.waitForLog('zone transfer', (r) => r.zone === CS && r.type === 'IXFR' && r.kind === 'incremental' && r.clientSerial === cs0);

      // 2. An endpoint of the headless data/db in alpha moves: its clusterset endpoint name follows.
      edit(primary, 'alpha', 'db.yaml', (t) => t.replace('addresses: [192.0.2.101]', 'addresses: [192.0.2.111]'));
      await primary.waitForZone(() => masterFile(csZone()).includes(`db-0.alpha.db.data.svc.${CS}\t30\tIN\tA\t192.0.2.111`), 10_000, 'the db endpoint change');
      await primary.settled(300);
      const cs2 = csZone().serial;
      expect(cs2).not.toBe(cs1);
      expect(await secondary.waitForSerial(cs2, 20_000, 20, CS)).toBe(cs2);
      await primary.waitForLog('zone transfer', (r) => r.zone === CS && r.type === 'IXFR' && r.kind === 'incremental' && r.clientSerial === cs1);

      // Both by NOTIFY (acknowledged) and IXFR from the clusterset zone's journal, no full transfer.
      expect(await primary.transfers('IXFR', 'incremental', CS)).toBeGreaterThanOrEqual(ixfrBefore + 2);
      expect((await primary.transfers('AXFR', 'full', CS)) + (await primary.transfers('IXFR', 'full', CS))).toBe(fullBefore);
      expect(await primary.notifies('acknowledged', CS)).toBeGreaterThanOrEqual(ackBefore + 2);
      // The secondary answers the new names, and no longer the old endpoint address.
      const qs = [
        { name: `api.shop.svc.${CS}`, type: 'A' },
        { name: `_grpc._tcp.api.shop.svc.${CS}`, type: 'SRV' },
        { name: `db-0.alpha.db.data.svc.${CS}`, type: 'A' },
        { name: `db.data.svc.${CS}`, type: 'A' },
      ];
      const [ours, theirs] = await Promise.all([digManyReasking('127.0.0.1', primary.port, qs), digManyReasking('127.0.0.1', secondary.port, qs)]);
      qs.forEach((q, i) => expect(compareResults(ours[i], theirs[i], { labels: ['fedns', kind], flags: FLAGS, sections: ['answer', 'authority'] }), q.name).toEqual([]));
      expect(theirs[2].answer.map((r) => r.data)).toEqual(['192.0.2.111']);
      expect(theirs[3].answer.map((r) => r.data)).not.toContain('192.0.2.101');
      // The federation zone followed too (the same edits change it), on its own serial.
      expect(await secondary.waitForSerial(primary.zone().serial, 20_000)).toBe(primary.zone().serial);
      expect(primary.logs.find('zone transfer refused')).toEqual([]);
    });
  });
}
