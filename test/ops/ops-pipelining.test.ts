// Pipelined requests on the ops listener. Node's HTTP server hands the listener every request of a
// chunk it reads at once, however many, and each got its answer made there and then: one 64 KiB
// write of `GET /metrics` lines (about 1,800 requests, from a client that reads nothing) cost
// 1,800 renders of the metrics page (a millisecond each, on the one event loop the DNS listeners
// answer on) and 1,800 pages held in memory. A few such connections kept DNS queries waiting for
// seconds, and a minute and more of them took gigabytes.
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { DemoServers } from '../support/demo.js';

const demos = new DemoServers();
afterEach(() => demos.stopAll());

/** A query for www.example.com. A; the milliseconds the answer took. */
function askUdp(port: number): Promise<number> {
  const q = Buffer.from('12340100000100000000000003777777076578616d706c6503636f6d0000010001', 'hex');
  const u = createSocket('udp4');
  const t0 = performance.now();
  return new Promise((resolve) => {
    u.once('message', () => {
      u.close();
      resolve(performance.now() - t0);
    });
    u.send(q, port, '127.0.0.1');
  });
}

describe('the ops listener, pipelined requests from clients that read nothing', () => {
  it('makes a bounded number of answers per connection, and DNS queries are answered meanwhile', async () => {
    const { server, sockets } = await demos.start();
    const port = server.ops!.address!.port;
    const dnsPort = server.dns.addresses()[0].port;
    let renders = 0;
    const text = server.metrics.text.bind(server.metrics);
    server.metrics.text = () => (renders++, text());
    expect(await askUdp(dnsPort)).toBeLessThan(1000);

    const request = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n';
    const perWrite = Math.floor(65536 / request.length);
    const connections = 4;
    // Over the next three seconds the event loop (the DNS listeners') is never held up for long,
    // and queries are answered.
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    for (let i = 0; i < connections; i++) {
      const s = connect({ port, host: '127.0.0.1' });
      s.on('error', () => {});
      s.pause();
      s.write(request.repeat(perWrite));
      sockets.push(s);
    }
    let slowest = 0;
    for (let i = 0; i < 15; i++) {
      await new Promise((r) => setTimeout(r, 200));
      slowest = Math.max(slowest, await askUdp(dnsPort));
    }
    lag.disable();
    expect(Math.round(lag.max / 1e6)).toBeLessThan(500);
    expect(slowest).toBeLessThan(500);
    expect(renders).toBeLessThanOrEqual(connections * 16);
  }, 60_000);

  it('answers a client that pipelines a few requests, and one that asks many in turn on one connection', async () => {
    const { server, sockets } = await demos.start();
    const port = server.ops!.address!.port;
    const s = connect({ port, host: '127.0.0.1' });
    sockets.push(s);
    let text = '';
    s.setEncoding('latin1').on('data', (d: string) => (text += d));
    const answers = () => text.split('HTTP/1.1 200 OK').length - 1;
    const until = async (n: number) => {
      const deadline = Date.now() + 5000;
      while (answers() < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      return answers();
    };
    // Four at once, then one at a time, 40 more: every one answered, the connection kept.
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(4));
    expect(await until(4)).toBe(4);
    for (let i = 5; i <= 44; i++) {
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(await until(i)).toBe(i);
    }
    expect(s.destroyed).toBe(false);
  }, 20_000);
});
