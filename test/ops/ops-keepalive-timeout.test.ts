// A keep-alive connection to the ops listener that stops reading during its second request.
// Node's HTTP server sets a keep-alive connection's timeout back to none (server.timeout, 0) when
// its next request begins, so the idle timeout the listener put on the socket at accept time is
// gone: a client that asks twice and then reads nothing held its connection, with the unsent
// answers and a place among the busy connections no new one can take, for as long as it liked.
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OpsServer } from '../../src/ops/http.js';
import { createLogger } from '../../src/ops/log.js';
import type { Federation } from '../../src/federation/federation.js';
import type { Metrics } from '../../src/ops/metrics.js';

/** A /metrics page too big for the kernel's socket buffers to take whole (a big federation's, say). */
const PAGE = 'x'.repeat(4 << 20);

let ops: OpsServer | undefined;

/** An ops listener whose idle timeout (tcp.idleTimeout) is 1 s and whose /metrics page is `page`. */
async function listen(page: string): Promise<number> {
  const metrics = { registry: { contentType: 'text/plain' }, text: async () => page } as unknown as Metrics;
  ops = new OpsServer(() => ({}) as Federation, metrics, createLogger('silent'), {
    host: '127.0.0.1',
    port: 0,
    readyDeadline: 0,
    startedAt: Date.now(),
    zoneRefusal: () => 'no',
    drainTimeout: () => 1,
  });
  return (await ops.listen()).port;
}
afterEach(async () => {
  await ops?.close();
  ops = undefined;
});

describe('the ops listener, a keep-alive client that stops reading', () => {
  it('closes the connection once it has read nothing for tcp.idleTimeout, on its second request as on its first', async () => {
    const port = await listen(PAGE);
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    let closed = false;
    socket.on('close', () => (closed = true));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    // One request asked and answered: the connection is a keep-alive one now.
    socket.write('GET /healthz HTTP/1.1\r\nHost: fedns\r\n\r\n');
    await new Promise<void>((r) => socket.once('data', () => r()));
    // Then a few pages asked for (within any pipelining bound) and nothing more read.
    socket.pause();
    const pages = 4;
    socket.write('GET /metrics HTTP/1.1\r\nHost: fedns\r\n\r\n'.repeat(pages));
    // Three idle timeouts later the server has closed it: the client, reading again, gets what
    // the kernel held and then the end, not every page.
    await new Promise((r) => setTimeout(r, 3000));
    let bytes = 0;
    socket.on('data', (d: Buffer) => (bytes += d.length));
    socket.resume();
    const deadline = Date.now() + 5000;
    while (!closed && bytes < pages * PAGE.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    expect(bytes).toBeLessThan(pages * PAGE.length);
  }, 15_000);

  it('closes a keep-alive connection idle between requests after tcp.idleTimeout, not Node\'s own 5 s', async () => {
    const port = await listen('ok');
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    const closed = new Promise<number>((r) => socket.once('close', () => r(performance.now())));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write('GET /healthz HTTP/1.1\r\nHost: fedns\r\n\r\n');
    await new Promise<void>((r) => socket.once('data', () => r()));
    const answered = performance.now();
    // Nothing more asked: closed about 1 s later (wide of it on a busy machine, short of 5 s).
    const after = (await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 6000))])) - answered;
    socket.destroy();
    expect(after).toBeGreaterThan(500);
    expect(after).toBeLessThan(4000);
  }, 15_000);
});
