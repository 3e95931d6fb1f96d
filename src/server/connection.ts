// The one writer of a TCP connection: every message to the client, query answers and zone
// transfers alike, leaves through it, so its backpressure holds for all of them (RFC 7766 6.2.3).
import type { Socket } from 'node:net';

/** Unsent bytes past which a connection stops being read until the client reads its answers. */
export const UNSENT_BOUND = 64 * 1024;

/** How long past the bound makes a connection stalled, so that it may be closed to make room. */
const STALLED_MS = 1000;

export class ConnectionWriter {
  readonly remoteAddress: string | undefined;
  /** Called when the connection is ready again: drained under the bound, transfers done. */
  onReady?: () => void;
  /** Whole queries received and not yet answered (the reader set them aside for its next turn). */
  pending = false;
  /** Transfers streaming (or queued) on this connection. */
  private held = 0;
  private stall?: NodeJS.Timeout;
  private stalledSince = 0;
  /** Bytes handed to the kernel when last looked at (unsentFor), and since when that figure stands. */
  private flushed = 0;
  private flushedSince = 0;

  constructor(
    readonly socket: Socket,
    /** Milliseconds a stalled connection gets to drain before it is closed. */
    private drainMs: number,
  ) {
    this.remoteAddress = socket.remoteAddress;
    socket.on('drain', () => this.drained());
    socket.once('close', () => this.clearStall());
  }

  /** Past the bound: the client is not reading fast enough. */
  get full(): boolean {
    return this.socket.writableLength > UNSENT_BOUND;
  }

  /** Under the bound and no transfer running: more queries may be read and answered. */
  get ready(): boolean {
    return !this.full && this.held === 0;
  }

  /**
   * Stopped: answers unsent and none of them taken by the kernel for a second (the client does
   * not read them; a client that reads, however slowly, is not stalled), and no transfer streams
   * (a slow secondary). However few bytes are unsent: the kernel's buffers hold most of what a
   * client that stops reading asked for, and fedns may be left holding less than the bound.
   */
  get stalled(): boolean {
    if (this.held !== 0) return false;
    if (this.stall !== undefined && Date.now() - this.stalledSince >= STALLED_MS) return true;
    return this.socket.writableLength > 0 && this.unsentFor() >= STALLED_MS;
  }

  /** Milliseconds since the kernel last took any of the unsent bytes (as far as it was looked at). */
  private unsentFor(): number {
    const flushed = this.socket.bytesWritten - this.socket.writableLength;
    const now = Date.now();
    if (flushed !== this.flushed) {
      this.flushed = flushed;
      this.flushedSince = now;
    }
    return now - this.flushedSince;
  }

  /** A transfer streams (or waits its turn) on this connection. */
  get streaming(): boolean {
    return this.held > 0;
  }

  /** No query in progress, nothing unsent: closing it loses no answer. */
  get idle(): boolean {
    return !this.pending && this.held === 0 && this.socket.writableLength === 0;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  destroy(): void {
    this.socket.destroy();
  }

  setDrainTimeout(ms: number): void {
    this.drainMs = ms;
  }

  /**
   * Writes one message with its two-byte length (RFC 1035 4.2.2). Past the bound it returns
   * false, and the client has the drain timeout to read enough, or the connection is closed.
   */
  send(msg: Buffer): boolean {
    const frame = Buffer.allocUnsafe(2 + msg.length);
    frame.writeUInt16BE(msg.length, 0);
    msg.copy(frame, 2);
    // A backlog that starts now has waited no time, however long ago the kernel last took bytes.
    const fresh = this.socket.writableLength === 0;
    this.socket.write(frame);
    if (fresh) {
      this.flushed = this.socket.bytesWritten - this.socket.writableLength;
      this.flushedSince = Date.now();
    }
    if (!this.full) return true;
    if (this.stall === undefined) {
      this.stall = setTimeout(() => this.socket.destroy(), this.drainMs);
      this.stalledSince = Date.now();
    }
    return false;
  }

  /** Resolves once the unsent bytes are under the bound again, or the connection is gone. */
  writable(): Promise<void> {
    if (!this.full || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Marks the connection busy until `work` settles (a transfer: not idle, queries wait). */
  hold(work: Promise<unknown>): void {
    this.held++;
    const release = () => {
      this.held--;
      if (this.ready) this.onReady?.();
    };
    work.then(release, release);
  }

  private drained(): void {
    if (this.full) return;
    this.clearStall();
    if (this.held === 0) this.onReady?.();
  }

  private clearStall(): void {
    if (this.stall) clearTimeout(this.stall);
    this.stall = undefined;
  }
}
