// Many /zone readers of one zone version at once, none reading. Each /zone request worked out the
// zone's canonical order for itself (AXFR works it out once per version and shares it, and takes
// at most 4 transfers per client): 32 connections from one client (the ops listener's bound per
// address) held 32 orderings of the same names, and their sorting, at once.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { addCluster, fillCluster, sleep, startPrimary, type Primary } from '../transfer/harness.js';
import { OPS_MAX_CONNECTIONS_PER_CLIENT, OpsServer } from '../../src/ops/http.js';
import { createLogger } from '../../src/ops/log.js';
import { settledHeap } from '../support/heap.js';

let primary: Primary | undefined;
let ops: OpsServer | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await ops?.close();
  await primary?.stop();
  ops = primary = undefined;
});

describe('/zone, many clients at once that read nothing', () => {
  it('works the zone version out once for all of them: the heap grows by what each has been sent, not by an ordering each', async () => {
    primary = await startPrimary({ transfer: { allow: ['127.0.0.0/8'] } });
    fillCluster(addCluster(primary), 0, 20_000);
    const zone = await primary.settled();
    const p = primary;
    ops = new OpsServer(() => p.fedns.federation, p.fedns.metrics, createLogger('silent'), {
      host: '127.0.0.1',
      port: 0,
      readyDeadline: 0,
      startedAt: Date.now(),
      zoneRefusal: () => undefined,
      drainTimeout: () => 30,
    });
    const { port } = await ops.listen();
    // One reader first, read to the end: whatever is kept for the version is in the baseline.
    const text = await (await fetch(`http://127.0.0.1:${port}/zone`)).text();
    expect(text).toContain(`serial ${zone.serial}`);
    const before = await settledHeap();
    const readers = OPS_MAX_CONNECTIONS_PER_CLIENT;
    for (let i = 0; i < readers; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.pause();
      s.write('GET /zone HTTP/1.1\r\nHost: fedns\r\n\r\n');
      sockets.push(s);
    }
    await sleep(2000);
    const perReader = ((await settledHeap()) - before) / readers;
    // What a stalled reader may hold: the piece being written and what Node buffers of it, a few
    // hundred KiB. An ordering of this zone's 100,000 names of its own is several times that.
    expect(perReader).toBeLessThan(1 << 20);
  }, 60_000);
});
