/**
 * The IXFR journal's limits (`transfer.journal.deltas` and `.records`): a serial that fell out of
 * the journal gets the whole zone, AXFR-style; one still in it gets the differences.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { Journal } from '../../src/server/journal.js';
import type { RR } from '../../src/wire/records.js';
import type { ClusterState } from '../../src/cluster/state.js';
import { addCluster, fillCluster, parseIncremental, readdress, soaSerialOf, startPrimary, tcpTransfer, type Primary } from './harness.js';

/** Asks IXFR from `serial`: "incremental", "full" (the zone, AXFR-style) or what else came back. */
async function ixfrKind(p: Primary, serial: number): Promise<string> {
  const r = await tcpTransfer(p.port, 'IXFR', { serial });
  if (r.rcode !== Rcode.NOERROR) return `rcode ${r.rcode}`;
  const now = p.zone();
  if (soaSerialOf(r.records[0]) !== now.serial) return 'old serial';
  if (r.records[1]?.type === RRType.SOA) {
    const inc = parseIncremental(r.records);
    return inc.complete && inc.deltas[0]?.from === serial ? 'incremental' : 'broken incremental';
  }
  return r.records.length === now.recordCount + 1 ? 'full' : `partial (${r.records.length} records)`;
}

describe('journal limits', () => {
  let p: Primary;
  afterAll(async () => {
    await p?.stop();
  });

  /** Makes one change (service i readdressed) and returns the serial it published. */
  async function change(c: ClusterState, i: number, salt: number): Promise<number> {
    const before = p.zone().serial;
    readdress(c, i, salt);
    return (await p.waitForZone((z) => z.serial !== before, 5000, `change ${i}`)).serial;
  }

  it('transfer.journal.deltas: a serial more than that many changes old gets the whole zone', async () => {
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'], journal: { deltas: 2, records: 1000 } } });
    const c = addCluster(p);
    fillCluster(c, 0, 10);
    const serials = [(await p.settled(100)).serial];
    for (let i = 0; i < 3; i++) serials.push(await change(c, i, i + 1));
    // Three changes since serials[0], two kept: serials[1] and serials[2] are in the journal.
    expect(await ixfrKind(p, serials[0])).toBe('full');
    expect(await ixfrKind(p, serials[1])).toBe('incremental');
    expect(await ixfrKind(p, serials[2])).toBe('incremental');
    expect((await p.waitForLog('zone transfer', (x) => x.type === 'IXFR' && x.clientSerial === serials[0])).kind).toBe('full (serial not in journal)');
  });

  it('transfer.journal.records: a change bigger than the journal empties it; later ones are kept', async () => {
    await p.stop();
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'], journal: { deltas: 100, records: 8 } } });
    const c = addCluster(p);
    fillCluster(c, 0, 5);
    const first = (await p.settled(100)).serial;
    const small = await change(c, 0, 1); // one service: its 4 A records removed and added again, 8 in all
    expect(await ixfrKind(p, first)).toBe('incremental');
    // Five new services at once: more records than the journal holds.
    const before = p.zone().serial;
    fillCluster(c, 5, 10);
    const big = (await p.waitForZone((z) => z.serial !== before, 5000, 'the big change')).serial;
    expect(await ixfrKind(p, first)).toBe('full');
    expect(await ixfrKind(p, small)).toBe('full');
    const later = await change(c, 1, 1);
    expect(await ixfrKind(p, big)).toBe('incremental');
    expect(p.zone().serial).toBe(later);
  });
});

describe('Journal', () => {
  const rr = (i: number) => ({ name: `n${i}.example.com.`, type: RRType.A, ttl: 30, data: `192.0.2.${i}` });
  const ch = (removed: RR[], added: RR[]) => ({ removed, added, size: removed.length + added.length });
  it('keeps at most `deltas` deltas and `records` records, dropping the oldest; a gap starts over', () => {
    const j = new Journal(2, 4);
    j.add(1, 2, ch([], [rr(1)]));
    j.add(2, 3, ch([rr(1)], [rr(2)]));
    expect(j.since(1)?.map((d) => d.to)).toEqual([2, 3]);
    j.add(3, 4, ch([], [rr(3)]));
    expect(j.since(1)).toBeUndefined();
    expect(j.since(2)?.map((d) => d.to)).toEqual([3, 4]);
    j.add(4, 5, ch([rr(2), rr(3)], [])); // 2 + 1 + 2 records > 4: the oldest goes
    expect(j.since(2)).toBeUndefined();
    expect(j.since(3)?.map((d) => d.to)).toEqual([4, 5]);
    j.add(5, 6, ch([], [1, 2, 3, 4, 5].map(rr))); // bigger than the journal
    expect(j.size).toBe(0);
    expect(j.since(5)).toBeUndefined();
    j.add(9, 10, ch([], [rr(9)]));
    j.add(11, 12, ch([], [rr(9)])); // not from 10: the chain broke
    expect(j.since(9)).toBeUndefined();
    expect(j.since(11)?.map((d) => d.to)).toEqual([12]);
  });

  it('counts a change by its size, without listing its records', () => {
    const j = new Journal(10, 10);
    const unread = {
      get removed(): RR[] {
        throw new Error('listed');
      },
      get added(): RR[] {
        throw new Error('listed');
      },
      size: 6,
    };
    j.add(1, 2, unread);
    j.add(2, 3, unread); // 6 + 6 > 10: the oldest goes
    expect(j.since(1)).toBeUndefined();
    expect(j.since(2)?.map((d) => d.to)).toEqual([3]);
  });
});

describe('journal limits on reload', () => {
  it('a reload applies new transfer.journal limits to the journal in use (lowered: the oldest deltas go)', async () => {
    const q = await startPrimary({ transfer: { allow: ['127.0.0.1'], journal: { deltas: 10, records: 1000 } } });
    try {
      const c = addCluster(q);
      fillCluster(c, 0, 4);
      await q.settled(100);
      for (let i = 0; i < 4; i++) {
        const before = q.zone().serial;
        readdress(c, i, 50 + i);
        await q.waitForZone((z) => z.serial !== before);
      }
      expect(q.fedns.journal.size).toBeGreaterThanOrEqual(4);
      await q.fedns.reload({ ...q.fedns.config, transfer: { ...q.fedns.config.transfer, journal: { deltas: 2, records: 1000 } } });
      expect(q.fedns.journal.size).toBe(2);
    } finally {
      await q.stop();
    }
  });
});
