// A bounded journal of the differences between recent zone serials, for IXFR (RFC 1995).
import type { RR } from '../wire/records.js';
import type { ZoneChange } from '../zone/snapshot.js';

/** What the journal keeps of a change: its records, listed when an IXFR first reads them, and how many. */
export type JournalChange = Pick<ZoneChange, 'removed' | 'added' | 'size'>;

export interface Delta {
  from: number;
  to: number;
  change: JournalChange;
  /** The SOA as it was at `from` (its other fields may differ from the current SOA's). */
  fromSoa?: RR;
}

export class Journal {
  private deltas: Delta[] = [];
  private records = 0;

  constructor(
    /** Most deltas kept. */
    private maxDeltas = 100,
    /** Most records (removed + added) kept across all deltas. */
    private maxRecords = 100_000,
  ) {}

  /** New limits (a reload): the oldest deltas go until the journal is within them. */
  setLimits(maxDeltas: number, maxRecords: number): void {
    this.maxDeltas = maxDeltas;
    this.maxRecords = maxRecords;
    this.trim();
  }

  private trim(): void {
    while (this.deltas.length > this.maxDeltas || this.records > this.maxRecords) {
      const d = this.deltas.shift()!;
      this.records -= d.change.size;
    }
  }

  /**
   * Records the change that turned serial `from` into `to`, counted by its size (records removed
   * and added) without listing it.
   */
  add(from: number, to: number, change: JournalChange, fromSoa?: RR): void {
    if (from === to) return;
    const size = change.size;
    if (size > this.maxRecords) {
      // Bigger than the whole journal: older clients get the full zone.
      this.deltas = [];
      this.records = 0;
      return;
    }
    const last = this.deltas[this.deltas.length - 1];
    if (last && last.to !== from) {
      this.deltas = [];
      this.records = 0;
    }
    this.deltas.push({ from, to, change, fromSoa });
    this.records += size;
    this.trim();
  }

  /** Forgets every delta: clients get the whole zone. */
  clear(): void {
    this.deltas = [];
    this.records = 0;
  }

  /** The deltas leading from `serial` to the newest one, or undefined when `serial` is not kept. */
  since(serial: number): Delta[] | undefined {
    const i = this.deltas.findIndex((d) => d.from === serial);
    return i < 0 ? undefined : this.deltas.slice(i);
  }

  get oldest(): number | undefined {
    return this.deltas[0]?.from;
  }

  get size(): number {
    return this.deltas.length;
  }
}

export type { RR };
