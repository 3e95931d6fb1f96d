// The list+watch loop's own supervision, with a scripted transport (no HTTP).
import { PassThrough, Writable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ApiError, DEFAULT_TIMING, Reflector, type ReflectorSink, type Transport } from '../../src/cluster/supervisor.js';
import { pino } from 'pino';

const until = async (ok: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('Reflector supervision', () => {
  it('a loop that throws (here: the sink, while reporting a failure) is restarted and lists again', async () => {
    let lists = 0;
    const streams: PassThrough[] = [];
    const transport: Transport = {
      async getJson() {
        lists++;
        if (lists === 1) throw new ApiError('list services: API server error (503)', 'http', 503);
        return { items: [{ metadata: { name: 'a', resourceVersion: '5' } }], metadata: { resourceVersion: '5' } };
      },
      async openStream() {
        const s = new PassThrough();
        streams.push(s);
        return { response: s as unknown as IncomingMessage, abort: () => s.destroy() };
      },
    };
    const failures: string[] = [];
    let failedThrows = true;
    let synced = 0;
    const sink: ReflectorSink = {
      replace: () => {},
      event: () => {},
      flush: () => {},
      synced: () => synced++,
      failed: (reason) => {
        failures.push(reason);
        if (failedThrows) {
          failedThrows = false;
          throw new Error('sink broke');
        }
      },
      restarted: () => {},
    };
    const logs: string[] = [];
    const log = pino({ level: 'error' }, new Writable({ write: (line, _enc, cb) => (logs.push(JSON.parse(String(line)).msg), cb()) }));
    const r = new Reflector({ kind: 'Service', path: '/api/v1/services', plural: 'services' }, transport, sink, { ...DEFAULT_TIMING, restartIntervalMs: 5 }, log);
    r.start();
    await until(() => synced > 0 && streams.length > 0);
    expect(logs).toContain('list/watch loop crashed; restarting it');
    expect(failures).toEqual(['list services: API server error (503)', 'internal error: sink broke']);
    expect(lists).toBe(2);
    expect(r.healthy).toBe(true);
    await r.stop();
  });
});
