/**
 * Response rate limiting against the built fedns: a flood of NXDOMAIN queries from one loopback
 * address is limited (most responses dropped, every 2nd dropped one slipped as TC=1), another
 * address keeps every answer, an exempt address is never limited, dig behind a limited address
 * gets its answer over TCP after a slip, and a reload turns it off and on.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery, type Message } from '../../src/wire/message.js';
import { dig } from '../support/dig.js';
import { startFedns, withYaml, type FednsProcess } from '../support/fedns.js';
import { requirePeer } from '../support/peers.js';
import { UDP_PATHS, udpBatch } from '../support/udp-paths.js';

const hasDig = requirePeer('dig');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A UDP client bound to one loopback address; replies are kept by query id. */
class Client {
  private readonly sock: Socket;
  private nextId = 1;
  readonly replies = new Map<number, Message>();
  private ready: Promise<void>;

  constructor(
    address: string,
    private readonly port: number,
  ) {
    this.sock = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    this.sock.on('message', (m) => {
      const msg = decodeMessage(m);
      this.replies.set(msg.id, msg);
    });
    this.ready = new Promise((r) => this.sock.bind(0, address, () => r()));
  }

  /** Sends n queries (in bursts of 50, so no socket buffer overflows) and returns their ids. */
  async flood(name: (i: number) => string, n: number): Promise<number[]> {
    await this.ready;
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.nextId++;
      ids.push(id);
      this.sock.send(encodeQuery(name(i), RRType.A, { id }), this.port, '127.0.0.1');
      if (i % 50 === 49) await sleep(2);
    }
    return ids;
  }

  /** Sends n queries 50 at a time, each burst once the previous one is answered (or 2 s passed). */
  async paced(name: (i: number) => string, n: number): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < n; i += 50) {
      const burst = await this.flood((j) => name(i + j), Math.min(50, n - i));
      ids.push(...burst);
      const end = Date.now() + 2000;
      while (!burst.every((id) => this.replies.has(id)) && Date.now() < end) await sleep(2);
    }
    return ids;
  }

  /** Asks one question and waits (bounded) for its reply. */
  async ask(name: string, timeoutMs = 2000): Promise<Message | undefined> {
    const [id] = await this.flood(() => name, 1);
    const end = Date.now() + timeoutMs;
    while (!this.replies.has(id) && Date.now() < end) await sleep(5);
    return this.replies.get(id);
  }

  close(): void {
    this.sock.close();
  }
}

/** Tallies the replies to `ids`: full NXDOMAIN answers, TC=1 slips, nothing. */
function tally(c: Client, ids: number[]) {
  const r = { full: 0, slipped: 0, none: 0 };
  for (const id of ids) {
    const m = c.replies.get(id);
    if (!m) r.none++;
    else if (m.tc) {
      expect(m.answers.length + m.authorities.length + m.additionals.length).toBe(0);
      expect(m.questions).toHaveLength(1);
      r.slipped++;
    } else {
      expect(m.rcode).toBe(Rcode.NXDOMAIN);
      expect(m.authorities.some((rr) => rr.type === RRType.SOA)).toBe(true);
      r.full++;
    }
  }
  return r;
}

const RRL = 'rateLimit: { responsesPerSecond: 20, slip: 2, window: 5s, ipv4PrefixLength: 32, exempt: [127.0.0.9] }';
const missing = (i: number) => `missing-${i}.default.fed.example.com.`;

describe.each(UDP_PATHS)('response rate limiting (UDP $name)', ({ batch }) => {
  let f: FednsProcess;
  const clients: Client[] = [];
  const client = (address: string) => {
    const c = new Client(address, f.port);
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    f = await startFedns({ edit: udpBatch(batch, withYaml(RRL)) });
  }, 20_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await f?.stop();
  });

  it('limits a flood of NXDOMAIN from one address, slipping every 2nd limited response, while another address gets every answer', async () => {
    const flooder = client('127.0.0.7');
    const good = client('127.0.0.1');
    const started = Date.now();
    const flood = flooder.flood(missing, 2000);
    // Meanwhile, the well-behaved client: 10 NXDOMAINs and 10 answers a second, under the rate.
    const goodReplies: (Message | undefined)[] = [];
    for (let i = 0; i < 20; i++) {
      goodReplies.push(await good.ask(missing(i)));
      goodReplies.push(await good.ask('nginx.default.fed.example.com.'));
      await sleep(100);
    }
    const ids = await flood;
    await sleep(300);
    const seconds = (Date.now() - started) / 1000;
    const r = tally(flooder, ids);
    // A burst of 20, then 20/s: far fewer than the 2,000 asked.
    expect(r.full).toBeGreaterThanOrEqual(20);
    expect(r.full).toBeLessThanOrEqual(20 + Math.ceil(20 * seconds) + 5);
    const limited = ids.length - r.full;
    expect(r.slipped + r.none).toBe(limited);
    expect(r.slipped / limited).toBeGreaterThan(0.4);
    expect(r.slipped / limited).toBeLessThan(0.6);
    expect(goodReplies.every((m) => m !== undefined && !m.tc)).toBe(true);
    expect(goodReplies.filter((m) => m!.rcode === Rcode.NXDOMAIN)).toHaveLength(20);
    expect(goodReplies.filter((m) => m!.rcode === Rcode.NOERROR && m!.answers.length > 0)).toHaveLength(20);
  });

  it('never limits an exempt address', async () => {
    const exempt = client('127.0.0.9');
    const ids = await exempt.paced(missing, 1000);
    expect(tally(exempt, ids)).toEqual({ full: 1000, slipped: 0, none: 0 });
  });

  it.skipIf(!hasDig)('a real client behind a limited address gets its answer: dig retries over TCP after a slip', async () => {
    await client('127.0.0.8').flood(missing, 500);
    await sleep(100);
    const r = await dig(['-b', '127.0.0.8', '@127.0.0.1', '-p', String(f.port), '+tries=3', '+time=1', missing(1), 'A']);
    expect(r.retriedOverTcp).toBe(true);
    expect(r.transport).toBe('TCP');
    expect(r.status).toBe('NXDOMAIN');
  });

  it('is off by default, and a reload turns it off and on', async () => {
    writeFileSync(f.config, readFileSync(f.config, 'utf8').replace(RRL, 'rateLimit: { responsesPerSecond: null }'));
    await f.waitForLog((r) => r.msg === 'configuration reloaded', 10_000);
    const a = client('127.0.0.10');
    const ids = await a.paced(missing, 500);
    expect(tally(a, ids).full).toBe(500);

    writeFileSync(f.config, readFileSync(f.config, 'utf8').replace('rateLimit: { responsesPerSecond: null }', RRL));
    await f.waitForLog((r) => r.msg === 'configuration reloaded' && f.logs().filter((x) => x.msg === 'configuration reloaded').length >= 2, 10_000);
    const more = await a.flood(missing, 500);
    await sleep(300);
    expect(tally(a, more).full).toBeLessThan(100);
  });
});
