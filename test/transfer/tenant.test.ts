/**
 * What tenants write cannot break the zone: EndpointSlices with zones that are no DNS label
 * ("Bad..Zone", 70 characters) are ignored, zones no slice names any more disappear, and every
 * AXFR of the zone stays well formed as `kdig` (an independent parser) reads it: before, while
 * and after hostile objects exist.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slimEndpointSlice, slimService } from '../../src/cluster/objects.js';
import type { ClusterState } from '../../src/cluster/state.js';
import { Rcode } from '../../src/wire/constants.js';
import { findBinary, requirePeer } from '../support/peers.js';
import { startPrimary, tcpTransfer, ZONE, type Primary } from './harness.js';

const run = promisify(execFile);
const KDIG = requirePeer('kdig') ? findBinary('kdig') : undefined;

/** kdig's AXFR: its comment lines (errors, warnings) and the owner names it printed. */
async function kdigAxfr(port: number): Promise<{ problems: string; owners: Set<string> }> {
  // kdig exits non-zero on a malformed reply: its output is what the test looks at.
  const { stdout, stderr } = await run(KDIG!, ['@127.0.0.1', '-p', String(port), ZONE, 'AXFR'], { timeout: 30_000 }).catch(
    (e: { stdout?: string; stderr?: string; message: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr || e.message }),
  );
  const problems = (stdout + stderr)
    .split('\n')
    .filter((l) => /error|warning|malformed|failed/i.test(l))
    .join('\n');
  const owners = new Set(
    stdout
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith(';'))
      .map((l) => l.split(/\s+/)[0].toLowerCase()),
  );
  return { problems, owners };
}

const service = (name: string) =>
  slimService({ metadata: { namespace: 'shop', name }, spec: { ports: [{ name: 'http', port: 80 }] }, status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } } });

const sliceIn = (name: string, service: string, zone: string, ip: string) =>
  slimEndpointSlice({
    metadata: { namespace: 'shop', name, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ip], conditions: { ready: true }, zone }],
  });

describe.skipIf(!KDIG)('hostile EndpointSlice zones and the AXFR', () => {
  let p: Primary;
  let c: ClusterState;

  beforeAll(async () => {
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'] } });
    // Zones learned from EndpointSlice topology (none configured).
    c = p.fedns.federation.addCluster({ name: 'alpha', region: 'us-east', zones: [], addressMode: 'loadBalancer', gracePeriod: 300 });
    c.upsert('Service', service('web'));
    c.upsert('EndpointSlice', sliceIn('web-a', 'web', 'us-east-a', '10.0.0.1'));
    c.markLive();
    c.flush();
    await p.waitForZone((z) => z.ready && z.recordCount > 3, 10_000, 'the first service');
  });

  afterAll(async () => {
    await p?.stop();
  });

  it('kdig reads a well-formed AXFR before, while and after slices with bad zones exist; removed zones disappear', async () => {
    const zonal = 'web.shop.fed.svc.us-east-a.us-east.example.com.';
    const before = await kdigAxfr(p.port);
    expect(before.problems).toBe('');
    expect(before.owners.has(zonal)).toBe(true);

    // A tenant writes slices with zones that are no DNS label, and one with a good new zone.
    const long = 'z'.repeat(70);
    c.upsert('Service', service('evil'));
    c.upsert('EndpointSlice', sliceIn('evil-1', 'evil', 'Bad..Zone', '10.0.0.2'));
    c.upsert('EndpointSlice', sliceIn('evil-2', 'evil', long, '10.0.0.3'));
    c.upsert('EndpointSlice', sliceIn('evil-3', 'evil', 'us-east-q', '10.0.0.4'));
    c.flush();
    await p.waitForZone((z) => z.recordCount > before.owners.size + 3, 10_000, 'the tenant service');
    await p.settled(100);
    const during = await kdigAxfr(p.port);
    expect(during.problems).toBe('');
    expect(during.owners.has('evil.shop.fed.example.com.')).toBe(true);
    expect(during.owners.has('web.shop.fed.svc.us-east-q.us-east.example.com.')).toBe(true);
    expect([...during.owners].filter((o) => o.includes('bad') || o.includes(long))).toEqual([]);
    const own = await tcpTransfer(p.port, 'AXFR');
    expect(own.rcode).toBe(Rcode.NOERROR);

    // The slices go: so does the zone only they named, with its names; the rest stays.
    c.remove('EndpointSlice', 'shop', 'evil-1');
    c.remove('EndpointSlice', 'shop', 'evil-2');
    c.remove('EndpointSlice', 'shop', 'evil-3');
    c.flush();
    await p.waitForZone((z) => ![...z.names.values()].some((n) => n.name.includes('us-east-q')), 10_000, 'the zone without us-east-q');
    const after = await kdigAxfr(p.port);
    expect(after.problems).toBe('');
    expect(after.owners.has(zonal)).toBe(true);
    expect([...after.owners].filter((o) => o.includes('us-east-q'))).toEqual([]);
    expect(p.fedns.federation.clusters.get('alpha')!.zones).toEqual(['us-east-a']);
    // Counted by reason in the metrics: the two bad zones.
    expect(await p.fedns.metrics.text()).toMatch(/^fedns_ignored_objects_total\{reason="zone"\} 2$/m);
    expect(await p.fedns.metrics.text()).toMatch(/^fedns_ignored_objects_total\{reason="name too long"\} 0$/m);
  });
});
