// A /zone client that reads steadily, never idle for the drain timeout, but slower than
// one piece (one big service's names: 40,000 endpoints are ~3 MB of lines) per timeout.
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { writePieces } from '../../src/ops/http.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

describe('a streamed ops answer to a slow reader', () => {
  it('gives the whole body to a client that reads every 25 ms (drain timeout 1 s), pieces of 16 MiB, read at about 2.5 MB/s', async () => {
    const PIECE = 'x'.repeat(16 << 20);
    const pieces = 2;
    const ended: boolean[] = [];
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      void writePieces(res, (async function* () { for (let i = 0; i < pieces; i++) yield PIECE; })(), 1000).then((s) => ended.push(s));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
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
      if (sincePause < 64 << 10) return;
      sincePause = 0;
      socket.pause();
      setTimeout(() => socket.resume(), 25).unref();
    });
    await Promise.race([done, new Promise((r) => setTimeout(r, 60_000))]);
    // The client was never idle for long: it read at least every few hundred ms.
    expect(longestGap).toBeLessThan(500);
    expect(ended).toEqual([false]);
    expect(bytes).toBeGreaterThan(pieces * PIECE.length);
    socket.destroy();
  }, 70_000);
});
