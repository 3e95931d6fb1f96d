// Batched UDP through the native addon (native/fedns_udp.c): recvmmsg/sendmmsg of up to 64
// datagrams and one JavaScript call per batch, instead of node:dgram's system calls and callback
// per datagram. The answers come from the same code as on the dgram path (DnsServer.answerUdp).
import { ListenError } from '../listen-error.js';
import { addonPath, loadAddon, type Addon, type Handle } from '../native.js';

export type UdpBatchMode = 'auto' | 'on' | 'off';
export type UdpPath = 'batched' | 'dgram';

/** What the addon counts per socket, in the order stats() returns them. */
export const UDP_STATS = ['received', 'sent', 'dropped', 'sendErrors', 'truncated', 'receiveErrors', 'batches'] as const;
export type UdpStats = Record<(typeof UDP_STATS)[number], number>;

// Per-datagram record in the meta buffer (int32 words; see native/fedns_udp.c).
const M_IN_LEN = 0;
const M_OUT_LEN = 1;
const M_FAMILY = 2;
const M_V4 = 3;
const M_TEXT_LEN = 4;
const M_TEXT = 5;
/** Any datagram fits (65,507 bytes over IPv4): a query is never cut short. */
const IN_SLOT = 65536;
/** Answers over UDP are at most MAX_UDP_PAYLOAD (1,232) bytes; the slot leaves room. */
const OUT_SLOT = 4096;
const RECV_BUFFER = 4 << 20;
/** Client addresses formatted once and reused; cleared when full, so memory stays bounded. */
const ADDRESS_CACHE = 4096;

/** The addon (loaded once by src/native.ts) if its datagram layout is this code's; the error says why it cannot be used. */
export function loadUdpBatch(): { addon?: Addon; error?: string } {
  const loaded = loadAddon();
  const { addon } = loaded;
  return !addon || (addon.batch === 64 && addon.metaWords >= M_TEXT + 12) ? loaded : { error: `${addonPath()}: not the addon this fedns was built with` };
}

export interface UdpChoice {
  path: UdpPath;
  /** Why this path, for the start-up log and `fedns check`. */
  reason: string;
  addon?: Addon;
}

/** The UDP path for `udp.batch`; throws when it is `on` and the addon cannot load. */
export function chooseUdpPath(mode: UdpBatchMode): UdpChoice {
  if (mode === 'off') return { path: 'dgram', reason: 'udp.batch is off' };
  const { addon, error } = loadUdpBatch();
  if (addon) return { path: 'batched', reason: `udp.batch is ${mode} and the native addon loaded`, addon };
  if (mode === 'on')
    throw new ListenError(
      `udp.batch is on but the native UDP addon cannot be loaded (${error}); build it with "npm run build" (needs python3, make and a C compiler), or set udp.batch to auto or off`,
      'udp.batch',
      undefined,
      { cause: error },
    );
  return { path: 'dgram', reason: `udp.batch is auto and the native addon did not load (${error})` };
}

/**
 * One listen address on the batched path. Same surface as the part of node:dgram's Socket that
 * DnsServer uses (address(), close(cb)).
 */
export class BatchSocket {
  private handle?: Handle;
  private readonly host: string;
  private readonly family: string;
  private final?: number[];

  constructor(
    private readonly addon: Addon,
    host: string,
    port: number,
    answer: (msg: Buffer, address: string) => Buffer | null,
    onError: (e: unknown, address: string) => void,
    private readonly onClose?: (final: UdpStats) => void,
  ) {
    const batch = addon.batch;
    const words = addon.metaWords;
    // Not zeroed, so untouched pages cost no memory; only bytes the kernel wrote are ever read.
    const inBuf = Buffer.allocUnsafeSlow(batch * IN_SLOT);
    const outBuf = Buffer.alloc(batch * OUT_SLOT);
    const metaBuf = Buffer.alloc(batch * words * 4);
    const meta = new Int32Array(metaBuf.buffer, metaBuf.byteOffset, batch * words);
    const v4 = new Map<number, string>();
    const onBatch = (n: number): void => {
      for (let i = 0, m = 0; i < n; i++, m += words) {
        meta[m + M_OUT_LEN] = 0;
        const len = meta[m + M_IN_LEN];
        if (len < 0) continue;
        let address: string | undefined;
        if (meta[m + M_FAMILY] === 4) address = v4.get(meta[m + M_V4]);
        if (address === undefined) {
          const t = (m + M_TEXT) * 4;
          address = metaBuf.toString('latin1', t, t + meta[m + M_TEXT_LEN]);
          if (meta[m + M_FAMILY] === 4) {
            if (v4.size >= ADDRESS_CACHE) v4.clear();
            v4.set(meta[m + M_V4], address);
          }
        }
        try {
          const out = answer(inBuf.subarray(i * IN_SLOT, i * IN_SLOT + len), address);
          if (out === null || out.length > OUT_SLOT) continue;
          out.copy(outBuf, i * OUT_SLOT);
          meta[m + M_OUT_LEN] = out.length;
        } catch (e) {
          onError(e, address);
        }
      }
    };
    this.handle = addon.open(host, port, RECV_BUFFER, inBuf, IN_SLOT, outBuf, OUT_SLOT, metaBuf, onBatch);
    this.host = host;
    this.family = host.includes(':') ? 'IPv6' : 'IPv4';
  }

  address(): { address: string; family: string; port: number } {
    return { address: this.host, family: this.family, port: this.handle ? this.addon.port(this.handle) : 0 };
  }

  /** What the socket counted: datagrams received, answers sent, dropped (send buffer full), ... */
  stats(): UdpStats {
    const s = this.final ?? (this.handle ? this.addon.stats(this.handle) : []);
    return Object.fromEntries(UDP_STATS.map((k, i) => [k, s[i] ?? 0])) as UdpStats;
  }

  close(cb?: () => void): void {
    if (this.handle) {
      this.final = this.addon.stats(this.handle);
      this.addon.close(this.handle);
      this.handle = undefined;
      this.onClose?.(this.stats());
    }
    if (cb) setImmediate(cb);
  }
}
