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
   * Stopped: past the bound for a second (the client does not read its answers; a client that
   * reads and is only briefly behind is not stalled), and no transfer streams (a slow secondary).
   */
  get stalled(): boolean {
    return this.stall !== undefined && Date.now() - this.stalledSince >= STALLED_MS && this.held === 0;
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
    this.socket.write(frame);
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
