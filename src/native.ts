// The native addon (native/fedns_udp.c, built by `npm run build`): batched UDP
// (server/udp-batch.ts), and trimming the C allocator (trimAllocator below). fedns runs without
// it: UDP goes through node:dgram and nothing is trimmed.
import { createRequire } from 'node:module';
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Handle = object;

export interface Addon {
  open(host: string, port: number, rcvbuf: number, inBuf: Buffer, inSlot: number, outBuf: Buffer, outSlot: number, meta: Buffer, onBatch: (n: number) => void): Handle;
  port(h: Handle): number;
  close(h: Handle): void;
  stats(h: Handle): number[];
  /** malloc_trim(0): whether memory went back; undefined off glibc; absent in an addon built before it. */
  trim?(): boolean | undefined;
  batch: number;
  metaWords: number;
}

/** The addon's file: FEDNS_UDP_ADDON overrides it (a missing file forces the dgram path). */
export function addonPath(): string {
  if (process.env.FEDNS_UDP_ADDON) return process.env.FEDNS_UDP_ADDON;
  // Built code runs from dist/src/, the sources (under vitest) from src/.
  const up = fileURLToPath(import.meta.url).includes(`${sep}dist${sep}src${sep}`) ? '../../' : '../';
  return fileURLToPath(new URL(`${up}native/build/Release/fedns_udp.node`, import.meta.url));
}

let loaded: { addon?: Addon; error?: string } | undefined;

/** Loads the addon once; the error says why it cannot be used. */
export function loadAddon(): { addon?: Addon; error?: string } {
  if (loaded) return loaded;
  const file = addonPath();
  try {
    const a = createRequire(import.meta.url)(file) as Addon;
    if (typeof a.open !== 'function') throw new Error('not the addon this fedns was built with');
    loaded = { addon: a };
  } catch (e) {
    loaded = { error: `${file}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` };
  }
  return loaded;
}

// Memory the C allocator holds free, handed back to the system. glibc's malloc keeps what its
// arenas freed and returns only the top of the main heap by itself, so after a burst of big
// buffers (the list pages of every cluster at the initial sync or a re-list, and the arena of the
// page worker thread that read them) tens of MiB stay resident and unused: on the scale benchmark
// (benchmarks/scale.ts), 33 MiB of the 320 resident after the sync. The addon calls malloc_trim,
// which releases every free page of every arena, on the calling thread: 3 ms with nothing to
// free, 6 ms after a burst of 120 MiB, 28 ms after 400 MiB (measured here).
//
// Only an addon the UDP path loaded is used: `udp.batch: off` keeps the addon out of the
// process, and with it the trim.

/** Trims the C allocator's free memory; whether any went back, undefined where it cannot be done here. */
export function trimAllocator(): boolean | undefined {
  const trim = loaded?.addon?.trim;
  return typeof trim === 'function' ? trim() : undefined;
}
