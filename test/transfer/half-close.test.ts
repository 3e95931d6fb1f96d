/**
 * A client may send its queries and then close its side of the connection (a TCP half-close:
 * FIN after the last query, as `nc -N` and scripted clients do) while it reads the answers.
 * Knot and BIND answer everything received; fedns's socket, not half-open, ended its side as soon
 * as the client's FIN was read, so an AXFR asked that way was cut off after its first messages
 * and pipelined queries past the first turn went unanswered.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RRClass, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeMessage, type Message } from '../../src/wire/message.js';
import { addCluster, fillCluster, startPrimary, transferComplete, xfrQuery, type Primary } from './harness.js';

function frame(q: Buffer): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(q.length);
  return Buffer.concat([b, q]);
}

/** Sends `queries` with a FIN after them, reads every answer until fedns closes the connection. */
function askThenHalfClose(port: number, queries: Buffer[], timeoutMs = 20_000): Promise<{ messages: Message[]; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const messages: Message[] = [];
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ messages, closedByServer: false });
    }, timeoutMs);
    s.on('connect', () => s.end(Buffer.concat(queries.map(frame))));
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        messages.push(decodeMessage(Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0)))));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ messages, closedByServer: true });
    });
  });
}

describe('a client that half-closes after its queries', () => {
  let p: Primary;
  beforeAll(async () => {
    p = await startPrimary({ transfer: { allow: ['127.0.0.1'] } });
    // Several hundred KB: the transfer takes many messages and several turns.
    fillCluster(addCluster(p), 0, 3000);
    await p.settled(100);
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('gets the whole AXFR, then fedns closes the connection', async () => {
    const { messages, closedByServer } = await askThenHalfClose(p.port, [xfrQuery('AXFR', {})]);
    const records = messages.flatMap((m) => m.answers);
    expect(messages.length).toBeGreaterThan(1);
    expect(transferComplete(records, 'AXFR')).toBe(true);
    expect(records.length).toBe(p.zone().recordCount + 1);
    expect(closedByServer).toBe(true);
  });

  it('gets an answer to every one of 40 pipelined queries, then fedns closes the connection', async () => {
    const queries = Array.from({ length: 40 }, (_, i) =>
      encodeMessage({ id: i, questions: [{ name: `svc${i}.ns${i % 50}.fed.example.com.`, type: RRType.A, class: RRClass.IN }] }),
    );
    const { messages, closedByServer } = await askThenHalfClose(p.port, queries);
    expect(messages.map((m) => m.id).sort((a, b) => a - b)).toEqual(queries.map((_, i) => i));
    expect(closedByServer).toBe(true);
  });
});
