// A streamed ops answer (/zone) to a client that stops reading: closed once it has read nothing
// for the drain timeout (tcp.idleTimeout, as a TCP transfer is), instead of holding its
// connection and the zone version it reads for as long as it likes. A client that reads, however
// slowly, gets the whole body.
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { writePieces } from '../../src/ops/http.js';

const PIECE = 'x'.repeat(64 * 1024);

/** A body of `pieces` pieces of 64 KiB, counting how many were made. */
function body(pieces: number, made: { count: number }): AsyncIterable<string> {
  return (async function* () {
    for (let i = 0; i < pieces; i++) {
      made.count++;
      yield PIECE;
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
async function serve(pieces: number, drainMs: number) {
  const made = { count: 0 };
  const ended: boolean[] = [];
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    void writePieces(res, body(pieces, made), drainMs).then((stalled) => ended.push(stalled));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as { port: number }).port, made, ended };
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
    const socket = connect(s.port, '127.0.0.1');
    let bytes = 0;
    let sincePause = 0;
    socket.write('GET /zone HTTP/1.1\r\nHost: fedns\r\nConnection: close\r\n\r\n');
    const done = new Promise<void>((resolve) => socket.on('end', () => resolve()));
    socket.on('data', (d: Buffer) => {
      bytes += d.length;
      sincePause += d.length;
      if (sincePause < 1 << 20) return;
      sincePause = 0;
      socket.pause();
      setTimeout(() => socket.resume(), 300).unref();
    });
    await Promise.race([done, new Promise((r) => setTimeout(r, 30_000))]);
    expect(bytes).toBeGreaterThan(pieces * PIECE.length);
    expect(s.ended).toEqual([false]);
    expect(s.made.count).toBe(pieces);
    socket.destroy();
  }, 40_000);
});
