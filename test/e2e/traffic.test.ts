// Traffic policies on the running server: the demo maps 127.0.0.2, .3 and .4 to clusters alpha,
// bravo and charlie, and nginx.default answers nearest. Queries come from those source addresses
// over both UDP paths and TCP; a cluster losing its last ready endpoint hands its clients to the
// next tier within seconds, and gets them back.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { startDemo } from '../support/demo.js';
import { UDP_PATHS, udpBatch } from '../support/udp-paths.js';

const NAME = 'nginx.default.fed.example.com.';
const ALPHA = '192.0.2.10';
const BRAVO = '198.51.100.10';

function udpAsk(port: number, from: string, name = NAME): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no answer from 127.0.0.1:${port} to ${from}`));
    }, 2000);
    s.on('message', (msg) => {
      clearTimeout(timer);
      s.close();
      resolve(addresses(msg));
    });
    s.bind(0, from, () => s.send(encodeQuery(name, RRType.A, { id: 99 }), port, '127.0.0.1'));
  });
}

function tcpAsk(port: number, from: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const q = encodeQuery(NAME, RRType.A, { id: 98 });
    const sock = connect({ host: '127.0.0.1', port, localAddress: from }, () => sock.end(Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q])));
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => (buf = Buffer.concat([buf, d])));
    sock.on('end', () => resolve(addresses(buf.subarray(2, 2 + buf.readUInt16BE(0)))));
    sock.on('error', reject);
  });
}

function addresses(msg: Buffer): string[] {
  return decodeMessage(msg)
    .answers.filter((r) => r.type === RRType.A)
    .map((r) => r.data as string)
    .sort();
}

describe.each(UDP_PATHS)('traffic policy nearest on the demo (UDP $name)', ({ batch }) => {
  let demo: Awaited<ReturnType<typeof startDemo>>;
  beforeAll(async () => {
    demo = await startDemo(udpBatch(batch));
  });
  afterAll(async () => {
    await demo?.stop();
  });

  it('answers each client from its own cluster, unknown clients and clusters without a copy from all', async () => {
    expect(await udpAsk(demo.port, '127.0.0.2')).toEqual([ALPHA]);
    expect(await udpAsk(demo.port, '127.0.0.3')).toEqual([BRAVO]);
    expect(await tcpAsk(demo.port, '127.0.0.3')).toEqual([BRAVO]);
    // charlie (eu-west) has no ready nginx, and no other cluster is in its region: everything.
    expect(await udpAsk(demo.port, '127.0.0.4')).toEqual([ALPHA, BRAVO]);
    expect(await udpAsk(demo.port, '127.0.0.1')).toEqual([ALPHA, BRAVO]);
    expect(await udpAsk(demo.port, '127.0.0.2', 'nginx.default.fed.svc.example.com.')).toEqual([ALPHA]);
    // The clusterset name of nginx (exported, no ClusterSetIP) follows the same policy; web's ClusterSetIP is everyone's.
    expect(await udpAsk(demo.port, '127.0.0.2', 'nginx.default.svc.clusterset.local.')).toEqual([ALPHA]);
    expect(await udpAsk(demo.port, '127.0.0.3', 'nginx.default.svc.clusterset.local.')).toEqual([BRAVO]);
    expect(await udpAsk(demo.port, '127.0.0.1', 'nginx.default.svc.clusterset.local.')).toEqual([ALPHA, BRAVO]);
    // Regional names keep their meaning: us-east-b is bravo's, whoever asks.
    expect(await udpAsk(demo.port, '127.0.0.2', 'nginx.default.fed.svc.us-east-b.us-east.example.com.')).toEqual([BRAVO]);
  });

  it("moves bravo's clients to their region when bravo loses its last ready endpoint, and back, within seconds", async () => {
    const file = join(demo.dir, 'demo', 'bravo', 'services.yaml');
    const original = readFileSync(file, 'utf8');
    const ready = /(name: nginx-q9w8e[\s\S]*?conditions: \{ ready: )true/;
    expect(original).toMatch(ready);
    const waitFor = async (want: string[]) => {
      const start = Date.now();
      for (;;) {
        const got = await udpAsk(demo.port, '127.0.0.3');
        if (JSON.stringify(got) === JSON.stringify(want)) return Date.now() - start;
        if (Date.now() - start > 10_000) throw new Error(`still ${got.join(',')} after 10 s, want ${want.join(',')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    writeFileSync(file, original.replace(ready, '$1false'));
    expect(await waitFor([ALPHA])).toBeLessThan(5000);
    writeFileSync(file, original);
    expect(await waitFor([BRAVO])).toBeLessThan(5000);
  });
});
