// An answer built from a stale cluster's data carries Extended DNS Error 3 (Stale Answer,
// RFC 8914) and the stale TTL, as dig shows it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fedns } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/ops/log.js';
import { demoCopy } from '../support/demo.js';
import { dig } from '../support/dig.js';
import { requirePeer } from '../support/peers.js';

const hasDig = requirePeer('dig');

describe.skipIf(!hasDig)('stale answers through dig', () => {
  let server: Fedns;
  let cleanup: () => void;
  beforeAll(async () => {
    const copy = demoCopy((y) => y.replace('127.0.0.1:1053', '127.0.0.1:0').replace('listen: 127.0.0.1:9153', 'listen: null'));
    cleanup = copy.cleanup;
    server = new Fedns(loadConfig(copy.config), createLogger('silent'));
    await server.start();
    while (!server.federation.snapshot.ready) await new Promise((r) => setTimeout(r, 10));
  });
  afterAll(async () => {
    await server.stop(100);
    cleanup();
  });

  it('shows EDE 3 and the stale TTL once a contributing cluster turns stale, and neither while live', async () => {
    const port = String(server.dns.addresses()[0].port);
    const ask = () => dig(['@127.0.0.1', '-p', port, 'billing.finance.fed.example.com', 'A']);
    const live = await ask();
    expect(live.edeCode).toBeUndefined();
    expect(live.answer[0].ttl).toBe(30);
    server.federation.clusters.get('bravo')!.markBroken('watch failed (test)');
    server.federation.rebuild();
    const stale = await ask();
    expect(stale.status).toBe('NOERROR');
    expect(stale.answer.map((r) => r.data)).toEqual(['198.51.100.30']);
    expect(stale.answer[0].ttl).toBe(5);
    expect(stale.edeCode).toBe(3);
    expect(stale.ede).toMatch(/Stale Answer/);
  });
});
