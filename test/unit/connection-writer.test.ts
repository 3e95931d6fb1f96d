// When a TCP connection counts as stalled, so that it may be closed to make room for others
// (server.ts, through ConnectionBounds): its client has stopped reading what it asked for. A client can stop
// reading while fedns holds less than the unsent bound (the rest sits in the kernel's buffers),
// and keep the connection alive with frames that need no answer: it must still count.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConnectionWriter, UNSENT_BOUND } from '../../src/server/connection.js';

/** A socket whose unsent bytes and bytes handed to the kernel the test sets. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  readonly remoteAddress = '127.0.0.9';
  writableLength = 0;
  /** As net.Socket's: bytes handed to the kernel plus those still unsent. */
  get bytesWritten(): number {
    return this.flushed + this.writableLength;
  }
  flushed = 0;
  write(b: Buffer): boolean {
    this.writableLength += b.length;
    return this.writableLength <= 16 * 1024;
  }
  /** The kernel takes `n` unsent bytes (the client read some). */
  flush(n: number): void {
    const k = Math.min(n, this.writableLength);
    this.writableLength -= k;
    this.flushed += k;
    if (this.writableLength === 0) this.emit('drain');
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

describe('ConnectionWriter.stalled', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('unsent answers under the bound that do not drain for a second: stalled', () => {
    const s = new FakeSocket();
    const c = new ConnectionWriter(s as unknown as Socket, 30_000);
    c.send(Buffer.alloc(500));
    expect(s.writableLength).toBeLessThan(UNSENT_BOUND);
    expect(c.idle).toBe(false);
    expect(c.stalled).toBe(false);
    vi.advanceTimersByTime(1500);
    expect(c.stalled).toBe(true);
    // Once the client reads them all it is neither stalled nor busy.
    s.flush(502);
    expect(c.stalled).toBe(false);
    expect(c.idle).toBe(true);
  });

  it('a client that keeps reading, however slowly, is not stalled', () => {
    const s = new FakeSocket();
    const c = new ConnectionWriter(s as unknown as Socket, 30_000);
    for (let i = 0; i < 10; i++) c.send(Buffer.alloc(1000));
    for (let t = 0; t < 8; t++) {
      vi.advanceTimersByTime(900);
      s.flush(100);
      expect(c.stalled, `after ${t + 1} steps`).toBe(false);
    }
    vi.advanceTimersByTime(1100);
    expect(c.stalled).toBe(true);
  });

  it('nothing unsent: never stalled, however long', () => {
    const s = new FakeSocket();
    const c = new ConnectionWriter(s as unknown as Socket, 30_000);
    c.send(Buffer.alloc(100));
    s.flush(102);
    vi.advanceTimersByTime(60_000);
    expect(c.stalled).toBe(false);
  });
});
