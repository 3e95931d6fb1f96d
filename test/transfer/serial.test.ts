// The SOA serial never goes backwards across restarts (transfer.serialFile), and replicas
// watching the same clusters publish comparable (time-based) serials.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Fedns } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/ops/log.js';
import { demoCopy } from '../support/demo.js';

const until = async (ok: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
};

async function start(config: string): Promise<Fedns> {
  const f = new Fedns(loadConfig(config), createLogger('silent'));
  await f.start();
  await until(() => f.federation.snapshot.ready);
  return f;
}

/** Publishes `n` changes at once, so the serial runs ahead of the clock. */
function churn(f: Fedns, n: number): void {
  const alpha = f.federation.clusters.get('alpha')!;
  for (let i = 0; i < n; i++) {
    alpha.upsert('Service', { ...alpha.services.get('default/nginx')!, lbAddresses: [`192.0.2.${100 + i}`] });
    alpha.flush();
    f.federation.rebuild();
  }
}

describe('SOA serial', () => {
  it('keeps increasing across a restart with transfer.serialFile, even when it ran ahead of the clock', async () => {
    const copy = demoCopy((y) =>
      y
        .replace('127.0.0.1:1053', '127.0.0.1:0')
        .replace('listen: 127.0.0.1:9153', 'listen: null')
        .replace(/^clusters:/m, 'transfer:\n  serialFile: state/serial\nclusters:'),
    );
    try {
      mkdirSync(join(copy.dir, 'state'));
      const first = await start(copy.config);
      churn(first, 20);
      const last = first.federation.snapshot.serial;
      expect(last).toBeGreaterThan(Math.floor(Date.now() / 1000) + 10);
      await first.stop(100);
      const file = join(copy.dir, 'state', 'serial');
      expect(existsSync(file)).toBe(true);
      expect(Number(readFileSync(file, 'utf8'))).toBe(last);
      const second = await start(copy.config);
      expect(second.federation.snapshot.serial).toBeGreaterThan(last);
      await second.stop(100);
    } finally {
      copy.cleanup();
    }
  });

  it('keeps increasing across a crash right after changes (no orderly stop): the file is ahead of every serial served', async () => {
    const copy = demoCopy((y) =>
      y
        .replace('127.0.0.1:1053', '127.0.0.1:0')
        .replace('listen: 127.0.0.1:9153', 'listen: null')
        .replace(/^clusters:/m, 'transfer:\n  serialFile: state/serial\nclusters:'),
    );
    const running: Fedns[] = [];
    try {
      mkdirSync(join(copy.dir, 'state'));
      const first = await start(copy.config);
      running.push(first);
      churn(first, 20);
      const last = first.federation.snapshot.serial;
      // The process dies here (SIGKILL, OOM, a lost node): what is on disk is all the next run has.
      const second = await start(copy.config);
      running.push(second);
      expect(second.federation.snapshot.serial).toBeGreaterThan(last);
    } finally {
      for (const f of running) await f.stop(100);
      copy.cleanup();
    }
  });

  it('keeps the clusterset zone serial increasing across a crash and a restart (its own file: serialFile + ".mcs")', async () => {
    const copy = demoCopy((y) =>
      y
        .replace('127.0.0.1:1053', '127.0.0.1:0')
        .replace('listen: 127.0.0.1:9153', 'listen: null')
        .replace(/^clusters:/m, 'transfer:\n  serialFile: state/serial\nclusters:'),
    );
    const running: Fedns[] = [];
    try {
      mkdirSync(join(copy.dir, 'state'));
      const first = await start(copy.config);
      running.push(first);
      // nginx is exported: each change moves the clusterset zone's serial too, ahead of the clock.
      churn(first, 20);
      const last = first.federation.clusterSetSnapshot!.serial;
      expect(last).toBeGreaterThan(Math.floor(Date.now() / 1000) + 10);
      // A crash: only what is on disk reaches the next run.
      const file = join(copy.dir, 'state', 'serial.mcs');
      expect(Number(readFileSync(file, 'utf8'))).toBeGreaterThan(last);
      const second = await start(copy.config);
      running.push(second);
      expect(second.federation.clusterSetSnapshot!.serial).toBeGreaterThan(last);
      // An orderly stop writes the serial served last; the next run goes on from it.
      const served = second.federation.clusterSetSnapshot!.serial;
      await second.stop(100);
      running.pop();
      expect(Number(readFileSync(file, 'utf8'))).toBe(served);
      const third = await start(copy.config);
      running.push(third);
      expect(third.federation.clusterSetSnapshot!.serial).toBeGreaterThan(served);
      // The federation zone keeps its own file.
      expect(existsSync(join(copy.dir, 'state', 'serial'))).toBe(true);
    } finally {
      for (const f of running) await f.stop(100);
      copy.cleanup();
    }
  });

  it('is comparable across replicas of the same clusters (time-based)', async () => {
    const a = demoCopy((y) => y.replace('127.0.0.1:1053', '127.0.0.1:0').replace('listen: 127.0.0.1:9153', 'listen: null'));
    const b = demoCopy((y) => y.replace('127.0.0.1:1053', '127.0.0.1:0').replace('listen: 127.0.0.1:9153', 'listen: null'));
    try {
      const one = await start(a.config);
      // Read as it starts: a replica that goes on publishing moves its serial on to the clock's
      // second, which a slow machine can make the second the other replica starts in.
      const s1 = one.federation.snapshot.serial;
      // The other replica starts once the clock has passed the first one's serial.
      await until(() => Math.floor(Date.now() / 1000) > s1);
      const two = await start(b.config);
      const s2 = two.federation.snapshot.serial;
      // Both are the unix time of their start (plus their few changes): close, and the later is larger.
      expect(Math.abs(s2 - Math.floor(Date.now() / 1000))).toBeLessThan(5);
      expect(s2).toBeGreaterThan(s1);
      expect(s2 - s1).toBeLessThan(10);
      await one.stop(100);
      await two.stop(100);
    } finally {
      a.cleanup();
      b.cleanup();
    }
  });
});
