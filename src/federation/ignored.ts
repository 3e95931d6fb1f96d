// Tenant-written values fedns could not use (a zone that is no DNS label, a name over 255
// bytes, ...): counted per reason for the metrics, and logged at most a few lines a minute per
// reason, so a flood of bad objects cannot flood the log.
import type { Logger } from 'pino';
import { IGNORE_REASONS, type IgnoreReason } from '../cluster/objects.js';
import { ThrottledLog } from '../throttled-log.js';

export class IgnoredInputs {
  private readonly counts = new Map<IgnoreReason, number>(IGNORE_REASONS.map((r) => [r, 0]));
  private readonly warnings?: ThrottledLog;

  constructor(log?: Logger) {
    this.warnings = log && new ThrottledLog(log);
  }

  /** Counts one ignored value and warns about it, unless this reason already did often this minute. */
  note(reason: IgnoreReason, fields: Record<string, unknown>, msg: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.warnings?.warn(reason, { reason, ...fields }, msg);
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
