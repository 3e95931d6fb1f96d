// Transfers under way are bounded per client address and in all: a transfer streams as fast as
// its client reads, so a client that asks for many and reads none would otherwise hold as many
// connections' worth of transfers (each with its encoder and a window of unsent bytes) until the
// idle timeout, and slow every other secondary's.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFederation } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { Federation } from '../../src/federation/federation.js';
import { createLogger } from '../../src/ops/log.js';
import { ConnectionWriter } from '../../src/server/connection.js';
import { Journal } from '../../src/server/journal.js';
import { Responder } from '../../src/server/responder.js';
import { MAX_TRANSFERS, MAX_TRANSFERS_PER_CLIENT, ZoneTransfers } from '../../src/server/xfr.js';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { DEMO_CONFIG } from '../support/demo.js';

/** A socket whose client never reads: every write stays unsent, no drain ever comes. */
class UnreadSocket extends EventEmitter {
  destroyed = false;
  readonly writableLength = 1 << 30;
  readonly remoteAddress: string;
  readonly writer: ConnectionWriter;
  constructor(remoteAddress: string) {
    super();
    this.remoteAddress = remoteAddress;
    this.writer = new ConnectionWriter(this as unknown as Socket, 60_000);
  }
  write(): boolean {
    return false;
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

describe('zone transfers under way', () => {
  let fed: Federation;
  let responder: Responder;
  const sockets: UnreadSocket[] = [];
  beforeAll(async () => {
    fed = await loadFederation(loadConfig(DEMO_CONFIG), createLogger('silent'));
    responder = new Responder(() => fed.snapshot);
    const transfers = new ZoneTransfers({ allow: ['127.0.0.0/8'], keys: [], requireTsig: false }, () => fed.snapshot, new Journal(), createLogger('silent'));
    responder.transferHandler = (q, msg, conn, remote, r) => transfers.handle(q, msg, conn, remote, r);
  });
  afterAll(() => {
    for (const s of sockets) s.destroy();
    fed?.close();
  });

  /** Asks for the zone on a new connection from `from`: null when the transfer took the connection, else the answer's rcode. */
  const axfr = (from: string): number | null => {
    const s = new UnreadSocket(from);
    sockets.push(s);
    const out = responder.answer(encodeQuery('example.com.', RRType.AXFR), 'tcp', s.writer);
    return out ? decodeMessage(out).rcode : null;
  };

  it('are a few per client and a few more in all; an ended one makes room', async () => {
    for (let i = 0; i < MAX_TRANSFERS_PER_CLIENT; i++) expect(axfr('127.0.0.1'), `transfer ${i + 1}`).toBeNull();
    expect(axfr('127.0.0.1')).toBe(Rcode.SERVFAIL);
    // Another client still gets its transfers, up to the limit of all.
    for (let i = MAX_TRANSFERS_PER_CLIENT; i < MAX_TRANSFERS; i++) expect(axfr(`127.0.0.${10 + i}`), `client ${i}`).toBeNull();
    expect(axfr('127.0.0.99')).toBe(Rcode.SERVFAIL);
    // A client that goes away ends its transfer: its place is free again.
    sockets[0].destroy();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(axfr('127.0.0.1')).toBeNull();
    expect(axfr('127.0.0.1')).toBe(Rcode.SERVFAIL);
  });
});
