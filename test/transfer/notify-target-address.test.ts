/**
 * A NOTIFY is acknowledged by a reply from the target it went to. The reply's source address is
 * as the socket reports it; the target as the configuration wrote it. Written as an IPv4-mapped
 * IPv6 address ([::ffff:127.0.0.1]:PORT, sent from the IPv6 socket), the reply comes from
 * ::ffff:127.0.0.1, which the notifier files as 127.0.0.1: no pending NOTIFY there, so every
 * acknowledgement is dropped, the NOTIFY retried to the end and counted `failed`.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { addCluster, fillCluster, readdress, sleep, startPrimary, type Primary } from './harness.js';

/** A stand-in secondary on 127.0.0.1 that acknowledges every NOTIFY (NOERROR, same id and question). */
async function acknowledger(): Promise<{ socket: Socket; port: number; heard: () => number }> {
  const socket = createSocket('udp4');
  let heard = 0;
  socket.on('message', (m, from) => {
    heard++;
    const reply = Buffer.from(m);
    reply[2] |= 0x80; // QR: a response, opcode NOTIFY kept, rcode NOERROR
    socket.send(reply, from.port, from.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { socket, port: socket.address().port, heard: () => heard };
}

let p: Primary | undefined;
let target: Socket | undefined;
afterEach(async () => {
  target?.close();
  target = undefined;
  await p?.stop();
  p = undefined;
});

describe('NOTIFY acknowledged by a target however its address is written', () => {
  it.each([['127.0.0.1'], ['[::ffff:127.0.0.1]']])('%s:PORT: the first reply acknowledges it, no retry', async (host) => {
    const t = await acknowledger();
    target = t.socket;
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'], notify: [`${host}:${t.port}`], notifyDelay: 0.01 } });
    const c = addCluster(p);
    fillCluster(c, 0, 3);
    const z = await p.settled(100);
    readdress(c, 1, 5);
    await p.waitForZone((x) => x.serial !== z.serial);
    // Past the first retry (1 s): an acknowledged NOTIFY is not sent again.
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline && (await p.notifies('acknowledged')) === 0) await sleep(20);
    await sleep(1300);
    expect(t.heard()).toBeGreaterThan(0);
    expect(await p.notifies('acknowledged')).toBeGreaterThanOrEqual(1);
    expect(await p.notifies('sent')).toBe(await p.notifies('acknowledged'));
  });
});
