// A streamed ops answer (/zone) to a client that stops reading: closed once it has read nothing
// for the drain timeout (tcp.idleTimeout, as a TCP transfer is), instead of holding its
// connection and the zone version it reads for as long as it likes. A client that reads, however
// slowly, gets the whole body.
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { writePieces } from '../../src/ops/http.js';

const PIECE = 'x'.repeat(64 * 1024);

/** A body of `pieces` pieces (64 KiB each by default), counting how many were made. */
function body(pieces: number, made: { count: number }, piece = PIECE): AsyncIterable<string> {
  return (async function* () {
    for (let i = 0; i < pieces; i++) {
      made.count++;
      yield piece;
    }
  })();
}

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** An HTTP server on 127.0.0.1 streaming `pieces` pieces with writePieces; what each request's writing ended with. */
async function serve(pieces: number, drainMs: number, piece = PIECE) {
  const made = { count: 0 };
  const ended: boolean[] = [];
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    void writePieces(res, body(pieces, made, piece), drainMs).then((stalled) => ended.push(stalled));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as { port: number }).port, made, ended };
}

/**
 * Asks for /zone and reads it, pausing `pauseMs` after every `every` bytes, until the server
 * closes or `limitMs` passes: the bytes read and the longest time between two reads.
 */
async function readPausing(port: number, every: number, pauseMs: number, limitMs: number): Promise<{ bytes: number; longestGap: number }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let bytes = 0;
  let sincePause = 0;
  let longestGap = 0;
  let last = performance.now();
  socket.write('GET /zone HTTP/1.1\r\nHost: fedns\r\nConnection: close\r\n\r\n');
  const done = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('data', (d: Buffer) => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
    bytes += d.length;
    sincePause += d.length;
    if (sincePause < every) return;
    sincePause = 0;
    socket.pause();
    setTimeout(() => socket.resume(), pauseMs).unref();
  });
  await Promise.race([done, new Promise((r) => setTimeout(r, limitMs))]);
  socket.destroy();
  return { bytes, longestGap };
}

describe('a streamed ops answer', () => {
  it('closes a client that reads nothing for the drain timeout, and makes no more of the body', async () => {
    // 64 MiB: more than the kernel's socket buffers hold on both ends.
    const s = await serve(1024, 300);
    const socket = connect(s.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /zone HTTP/1.1\r\nHost: fedns\r\n\r\n');
    // Never read.
    socket.pause();
    const start = performance.now();
    while (s.ended.length === 0 && performance.now() - start < 10_000) await new Promise((r) => setTimeout(r, 50));
    expect(s.ended).toEqual([true]);
    expect(performance.now() - start).toBeGreaterThanOrEqual(250);
    // Closed on fedns's side: the connection is gone.
    const open = await new Promise<number>((r) => server!.getConnections((_e, n) => r(n)));
    expect(open).toBe(0);
    // The writing stopped where the buffers filled: the rest of the body was never made.
    expect(s.made.count).toBeLessThan(1024);
    socket.destroy();
  });

  it('gives the whole body to a client that pauses, each pause shorter than the timeout', async () => {
    // 16 MiB, read with a pause of 300 ms after each MiB, the timeout 1 s.
    const pieces = 256;
    const s = await serve(pieces, 1000);
    const { bytes } = await readPausing(s.port, 1 << 20, 300, 30_000);
    expect(bytes).toBeGreaterThan(pieces * PIECE.length);
    expect(s.ended).toEqual([false]);
    expect(s.made.count).toBe(pieces);
  }, 40_000);

  it('gives the whole body to a client that reads steadily but slower than one big piece (a big service\'s names) per drain timeout', async () => {
    // Pieces of 16 MiB (40,000 endpoints are about 3 MB of lines), read at about 2.5 MB/s: a
    // pause of 25 ms after every 64 KiB, the timeout 1 s.
    const piece = 'x'.repeat(16 << 20);
    const s = await serve(2, 1000, piece);
    const { bytes, longestGap } = await readPausing(s.port, 64 << 10, 25, 60_000);
    // The client was never idle for long: it read at least every few hundred ms.
    expect(longestGap).toBeLessThan(500);
    expect(s.ended).toEqual([false]);
    expect(bytes).toBeGreaterThan(2 * piece.length);
  }, 70_000);
});
