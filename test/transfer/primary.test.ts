/**
 * One zone per serial, as secondaries see it: only the replica that transfer.primary names
 * serves AXFR/IXFR and sends NOTIFY (the others refuse, and stay silent), SOA changes reach
 * secondaries as a new serial, and a new domain is a new zone whose IXFR never offers deltas
 * from the old one.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig, ConfigError, type Config } from '../../src/config/load.js';
import { Rcode, RRType } from '../../src/wire/constants.js';
import type { SoaData } from '../../src/wire/records.js';
import { addCluster, captureLogs, fillCluster, parseIncremental, readdress, sleep, soaSerialOf, startPrimary, tcpTransfer, udpExchange, xfrQuery, type Primary } from './harness.js';
import { decodeMessage } from '../../src/wire/message.js';
import { Notifier } from '../../src/server/notify.js';
import type { ZoneSnapshot } from '../../src/zone/snapshot.js';

let p: Primary | undefined;
let secondary: UdpSocket | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
  secondary?.close();
  secondary = undefined;
});

/** A UDP socket standing in for a secondary: collects the NOTIFYs it gets. */
async function notifyTarget(): Promise<{ port: number; heard: Buffer[] }> {
  const heard: Buffer[] = [];
  const s = createSocket('udp4');
  secondary = s;
  s.on('message', (m) => heard.push(m));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return { port: s.address().port, heard };
}

describe('transfer.primary', () => {
  it('a replica that is not the primary refuses AXFR and IXFR (TCP and UDP) and sends no NOTIFY', async () => {
    const target = await notifyTarget();
    p = await startPrimary({
      transfer: { allow: ['127.0.0.1'], notify: [`127.0.0.1:${target.port}`], notifyDelay: 0.05, primary: 'fedns-transfer-0' },
      extra: { identity: { server: 'fedns-7d9f-abcde' } },
    });
    const c = addCluster(p);
    fillCluster(c, 0, 5);
    const z = await p.settled(100);
    for (const type of ['AXFR', 'IXFR'] as const) {
      const r = await tcpTransfer(p.port, type, type === 'IXFR' ? { serial: 1 } : {});
      expect(r.rcode, type).toBe(Rcode.REFUSED);
      expect(r.records).toEqual([]);
    }
    const udp = await udpExchange(p.port, xfrQuery('IXFR', { serial: z.serial - 1 }));
    expect(decodeMessage(udp!).rcode).toBe(Rcode.REFUSED);
    await p.waitForLog('zone transfer refused', (r) => String(r.reason).includes('not the transfer primary (transfer.primary: fedns-transfer-0, this replica: fedns-7d9f-abcde)'));
    // The zone over HTTP (/zone) is a transfer too: not from this replica either.
    expect(p.fedns.transfers.zoneRefusal('127.0.0.1')).toMatch(/not the transfer primary/);
    expect(await p.transfers('AXFR', 'refused')).toBe(1);
    readdress(c, 1, 7);
    await p.waitForZone((x) => x.serial !== z.serial);
    await sleep(400);
    expect(target.heard).toEqual([]);
  });

  it('the replica it names serves transfers and notifies', async () => {
    const target = await notifyTarget();
    p = await startPrimary({
      transfer: { allow: ['127.0.0.1'], notify: [`127.0.0.1:${target.port}`], notifyDelay: 0.05, primary: 'fedns-transfer-0' },
      extra: { identity: { server: 'fedns-transfer-0' } },
    });
    const c = addCluster(p);
    fillCluster(c, 0, 5);
    const z = await p.settled(100);
    const r = await tcpTransfer(p.port, 'AXFR');
    expect(r.rcode).toBe(Rcode.NOERROR);
    expect(p.fedns.transfers.zoneRefusal('127.0.0.1')).toBeUndefined();
    expect(soaSerialOf(r.records[0])).toBe(z.serial);
    readdress(c, 1, 7);
    await p.waitForZone((x) => x.serial !== z.serial);
    for (let i = 0; i < 100 && target.heard.length === 0; i++) await sleep(20);
    expect(target.heard.length).toBeGreaterThan(0);
  });

  it('needs identity.server to compare with', () => {
    const raw = { transfer: { primary: 'fedns-transfer-0' }, identity: { server: null }, listen: ['127.0.0.1:1053'] };
    expect(() => buildConfig(raw, '/etc/fedns/fedns.yaml', '/etc/fedns')).toThrow(ConfigError);
    expect(() => buildConfig(raw, '/etc/fedns/fedns.yaml', '/etc/fedns')).toThrow(/transfer\.primary: needs identity\.server/);
  });
});

describe('reloads as secondaries see them', () => {
  const reconfig = (c: Config, change: Partial<Config>): Config => ({ ...c, ...change });

  it('an SOA change alone is a new serial, with an IXFR carrying the new SOA', async () => {
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'] } });
    fillCluster(addCluster(p), 0, 5);
    const before = await p.settled(100);
    await p.fedns.reload(reconfig(p.fedns.config, { soa: { ...p.fedns.config.soa, refresh: 1234 } }));
    // A reload rebuilds every service, in slices on a busy machine: the zone as it stands once they are all built.
    const after = await p.settled(100);
    expect(after.serial).not.toBe(before.serial);
    const r = await tcpTransfer(p.port, 'IXFR', { serial: before.serial });
    const inc = parseIncremental(r.records);
    expect(inc.complete).toBe(true);
    expect(inc.deltas.map((d) => [d.from, d.to])).toEqual([[before.serial, after.serial]]);
    // RFC 1995 4: each difference sequence opens with the old SOA as it was, and closes with the new one.
    const soas = r.records.filter((x) => x.type === RRType.SOA).map((x) => [(x.data as SoaData).serial, (x.data as SoaData).refresh]);
    expect(soas).toEqual([
      [after.serial, 1234],
      [before.serial, 3600],
      [after.serial, 1234],
      [after.serial, 1234],
    ]);
  });

  it('a new domain is a new zone: IXFR from a serial of the old one gets the whole new zone', async () => {
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'] } });
    // Enough services that the new zone takes several slices to build on any machine.
    fillCluster(addCluster(p), 0, 3000);
    const before = await p.settled(100);
    const c = p.fedns.config;
    await p.fedns.reload(
      reconfig(c, {
        domain: 'example.net.',
        nameservers: [{ name: 'ns1.example.net.', addresses: ['127.0.0.1'] }],
        soa: { ...c.soa, mname: 'ns1.example.net.', rname: 'hostmaster.example.net.' },
      }),
    );
    // The new zone is built in slices on a busy machine, and is not ready (nor transferred) until every service is in it.
    const after = await p.settled(100);
    expect(after.domain).toBe('example.net.');
    const r = await tcpTransfer(p.port, 'IXFR', { zone: 'example.net.', serial: before.serial });
    expect(r.rcode).toBe(Rcode.NOERROR);
    expect(r.records[1].type).not.toBe(RRType.SOA); // the whole zone, not deltas
    expect(r.records.length).toBe(after.recordCount + 1);
    for (const rr of r.records) expect(rr.name.endsWith('example.net.'), rr.name).toBe(true);
    // The old zone is not served any more.
    expect((await tcpTransfer(p.port, 'AXFR', { zone: 'example.com.' })).rcode).toBe(Rcode.NOTAUTH);
  });
});

describe('NOTIFY after a reload', () => {
  it('stops, retries included, for targets the new settings no longer name (a replica that stopped being the primary)', async () => {
    const target = await notifyTarget();
    const zone = { serial: 7, domain: 'example.com.', soa: { name: 'example.com.', type: RRType.SOA, ttl: 3600, data: { mname: 'ns1.example.com.', rname: 'h.example.com.', serial: 7, refresh: 1, retry: 1, expire: 1, minimum: 1 } } };
    const base = { coalesceMs: 10, retryMs: 60, retries: 5 };
    const n = new Notifier({ ...base, targets: [{ host: '127.0.0.1', port: target.port }] }, () => zone as unknown as ZoneSnapshot, captureLogs('silent').log);
    try {
      n.changed();
      for (let i = 0; i < 100 && target.heard.length === 0; i++) await sleep(10);
      expect(target.heard.length).toBe(1); // sent, never acknowledged: retries are armed
      n.setOptions({ ...base, targets: [] });
      n.changed();
      await sleep(600); // past 60 + 120 + 240 ms of retries
      expect(target.heard.length).toBe(1);
    } finally {
      n.close();
    }
  });
});
