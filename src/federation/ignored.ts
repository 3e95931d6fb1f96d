// Tenant-written values fedns could not use (a zone that is no DNS label, a name over 255
// bytes, ...): counted per reason for the metrics, and logged at most a few lines a minute per
// reason, so a flood of bad objects cannot flood the log.
import type { Logger } from 'pino';
import { IGNORE_REASONS, type IgnoreReason } from '../cluster/objects.js';

/** Warning lines per reason and minute; the rest are counted and summed up in the next line. */
const LINES_PER_MINUTE = 5;
const WINDOW_MS = 60_000;

interface Window {
  start: number;
  lines: number;
  suppressed: number;
}

export class IgnoredInputs {
  private readonly counts = new Map<IgnoreReason, number>(IGNORE_REASONS.map((r) => [r, 0]));
  private readonly windows = new Map<IgnoreReason, Window>();

  constructor(public log?: Logger) {}

  /** Counts one ignored value and warns about it, unless this reason already did often this minute. */
  note(reason: IgnoreReason, fields: Record<string, unknown>, msg: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    if (!this.log) return;
    const now = Date.now();
    let w = this.windows.get(reason);
    if (!w || now - w.start >= WINDOW_MS) {
      const suppressed = w?.suppressed ?? 0;
      this.windows.set(reason, (w = { start: now, lines: 0, suppressed: 0 }));
      if (suppressed) fields = { ...fields, suppressedBefore: suppressed };
    }
    if (w.lines >= LINES_PER_MINUTE) {
      w.suppressed++;
      this.log.debug({ reason, ...fields }, msg);
      return;
    }
    w.lines++;
    this.log.warn({ reason, ...fields, ...(w.lines === LINES_PER_MINUTE ? { note: 'more of these are counted, not logged, for a minute' } : {}) }, msg);
  }

  /** Values ignored for `reason` since start. */
  count(reason: IgnoreReason): number {
    return this.counts.get(reason) ?? 0;
  }

  /** Every reason with its count (zeros included), for the metrics. */
  entries(): [IgnoreReason, number][] {
    return [...this.counts];
  }
}
