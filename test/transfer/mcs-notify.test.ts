// With mcs.enabled, the clusterset zone's NOTIFYs go to transfer.notify, or to mcs.notify when it
// is set: a secondary that carries only the federation zone need not be told of the other.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeMessage } from '../../src/wire/message.js';
import { startDemo } from '../support/demo.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A NOTIFY target on loopback that acknowledges, and the zones it was told about. */
async function secondary(): Promise<{ port: number; zones: Set<string> }> {
  const s: Socket = createSocket('udp4');
  const zones = new Set<string>();
  s.on('message', (msg, rinfo) => {
    const m = decodeMessage(msg);
    zones.add(m.questions[0].name);
    const reply = Buffer.from(msg.subarray(0, 12));
    reply[2] |= 0x80;
    reply.writeUInt16BE(0, 6);
    reply.writeUInt16BE(0, 8);
    reply.writeUInt16BE(0, 10);
    reply.writeUInt16BE(0, 4);
    s.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  cleanups.push(() => {
    s.close();
  });
  return { port: s.address().port, zones };
}

async function notifiedZones(mcsNotify: (port: number) => string): Promise<string[]> {
  const { port, zones } = await secondary();
  const demo = await startDemo((y) => y.replace('mcs:\n', `transfer: { notify: ["127.0.0.1:${port}"], notifyDelay: 50ms }\nmcs:\n${mcsNotify(port)}`));
  cleanups.push(() => demo.stop());
  const deadline = Date.now() + 5000;
  while (zones.size < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 500));
  return [...zones].sort();
}

describe('NOTIFY targets of the clusterset zone', () => {
  it('are transfer.notify by default: both zones', async () => {
    expect(await notifiedZones(() => '')).toEqual(['clusterset.local.', 'example.com.']);
  });

  it('are mcs.notify when it is set: an empty list tells nobody of the clusterset zone', async () => {
    expect(await notifiedZones(() => '  notify: []\n')).toEqual(['example.com.']);
  });
});
