// The list+watch loop (Reflector, src/cluster/supervisor.ts) driven by a scripted transport, no
// HTTP: the API server's lists are a function, its watches streams the test writes to.
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { DEFAULT_TIMING, Reflector, type ReflectorSink, type SupervisorTiming, type Transport } from '../../src/cluster/supervisor.js';

/** Polls `ok` every 5 ms until it holds; throws after `ms`. */
export async function until(ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A transport whose lists `getJson` answers and whose watches are streams, kept in `streams` in
 * the order opened. `opened` sees each watch's query and stream as it opens (to script what the
 * stream says), and may throw instead: the watch request fails with that error.
 */
export function scriptedTransport(getJson: Transport['getJson'], opened?: (query: Record<string, string>, stream: PassThrough) => void): { transport: Transport; streams: PassThrough[] } {
  const streams: PassThrough[] = [];
  const transport: Transport = {
    getJson,
    async openStream(_path, query) {
      const s = new PassThrough();
      try {
        opened?.(query, s);
      } catch (e) {
        s.destroy();
        throw e;
      }
      streams.push(s);
      return { response: s as unknown as IncomingMessage, abort: () => s.destroy() };
    },
  };
  return { transport, streams };
}

/** A sink that does nothing but what `parts` give it. */
export function sinkOf(parts: Partial<ReflectorSink> = {}): ReflectorSink {
  return { replace: () => {}, event: () => {}, flush: () => {}, synced: () => {}, failed: () => {}, restarted: () => {}, ...parts };
}

/** A started Reflector of Services, logging nothing, restarting 20 ms apart (`timing`: more changes). */
export function startReflector(transport: Transport, sink: ReflectorSink, timing: Partial<SupervisorTiming> = {}): Reflector {
  const r = new Reflector({ kind: 'Service', path: '/api/v1/services', plural: 'services' }, transport, sink, { ...DEFAULT_TIMING, restartIntervalMs: 20, ...timing }, pino({ level: 'silent' }));
  r.start();
  return r;
}
