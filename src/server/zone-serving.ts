// What one served zone has of its own beside its snapshots: the IXFR journal, zone transfers,
// NOTIFY to secondaries, and the serial file that keeps its serials increasing across restarts.
// fedns serves the federation zone and, with mcs.enabled, the clusterset zone: one of each.
import type { Logger } from 'pino';
import { writeFileAtomic } from '../atomic-file.js';
import type { RR } from '../wire/records.js';
import type { ZoneChange, ZoneSnapshot } from '../zone/snapshot.js';
import { Journal } from './journal.js';
import { Notifier, type NotifyOptions, type NotifyStats } from './notify.js';
import { serialLess, ZoneTransfers, type TransferPolicy, type TransferStats } from './xfr.js';

/** Serials reserved on disk at a time (transfer.serialFile): one write per this many changes at most. */
const SERIAL_RESERVE = 1000;

export interface ZoneServingOptions {
  policy: TransferPolicy;
  notify: NotifyOptions;
  journal: { deltas: number; records: number };
  /** Keeps this zone's serials ahead of every one served (optional). */
  serialFile?: string;
}

export class ZoneServing {
  readonly journal: Journal;
  readonly transfers: ZoneTransfers;
  readonly notifier: Notifier;
  private serialFile?: string;
  /** The serial the file on disk is ahead of: serials up to it may be published without a write. */
  private reservedSerial = 0;
  private lastSerial: number;
  private lastSoa: RR;

  constructor(
    private readonly zone: () => ZoneSnapshot,
    opts: ZoneServingOptions,
    private readonly log: Logger,
    stats: { transfers?: TransferStats; notifies?: NotifyStats } = {},
  ) {
    this.journal = new Journal(opts.journal.deltas, opts.journal.records);
    this.transfers = new ZoneTransfers(opts.policy, zone, this.journal, log.child({ component: 'xfr' }), stats.transfers);
    this.notifier = new Notifier(opts.notify, zone, log.child({ component: 'notify' }), stats.notifies);
    this.serialFile = opts.serialFile;
    const snap = zone();
    this.lastSerial = snap.serial;
    this.lastSoa = snap.soa;
    this.reserveSerial(snap.serial);
  }

  /** A new snapshot of this zone is current: journal its change, keep the serial file ahead, notify. */
  published(snap: ZoneSnapshot, change: ZoneChange): void {
    if (snap.serial === this.lastSerial) return;
    // A new domain is a new zone: no IXFR delta leads into it from the old one.
    // Neither does one across a change that was not listed record by record.
    if (snap.domain !== this.lastSoa.name || change.unlisted > 0) this.journal.clear();
    else this.journal.add(this.lastSerial, snap.serial, change, this.lastSoa);
    this.lastSerial = snap.serial;
    this.lastSoa = snap.soa;
    this.reserveSerial(snap.serial);
    this.notifier.changed();
  }

  /** New settings from a reload. */
  reconfigure(opts: ZoneServingOptions): void {
    this.transfers.setPolicy(opts.policy);
    this.notifier.setOptions(opts.notify);
    this.journal.setLimits(opts.journal.deltas, opts.journal.records);
    if (opts.serialFile !== this.serialFile) {
      // A new file starts ahead of the serial served now.
      this.serialFile = opts.serialFile;
      this.reservedSerial = 0;
      this.reserveSerial(this.zone().serial);
    }
  }

  /**
   * Keeps the serial file ahead of every serial published: before a serial past the last
   * reservation is served, SERIAL_RESERVE more are reserved on disk (a synchronous, atomic write).
   * A run that ends in any way, a crash included, restarts past every serial it served, so a
   * secondary never sees an older serial, or one it had with other contents.
   */
  private reserveSerial(serial: number): void {
    const file = this.serialFile;
    if (!file || (this.reservedSerial && !serialLess(this.reservedSerial, serial))) return;
    const reserved = (serial + SERIAL_RESERVE) >>> 0 || 1;
    // Tried again (and logged) once the serial passes this reservation, not at every change.
    this.reservedSerial = reserved;
    try {
      writeFileAtomic(file, `${reserved}\n`);
    } catch (e) {
      this.log.error({ err: e, file }, 'cannot save the SOA serial');
    }
  }

  /**
   * Nothing is served any more: the next run continues from the serial served last rather than
   * from the reservation (only a crash skips the serials reserved).
   */
  saveServedSerial(): void {
    const file = this.serialFile;
    if (!file || !this.reservedSerial) return;
    try {
      writeFileAtomic(file, `${this.zone().serial}\n`);
    } catch (e) {
      this.log.error({ err: e, file }, 'cannot save the SOA serial');
    }
  }
}
