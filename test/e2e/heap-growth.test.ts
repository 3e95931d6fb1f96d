// `fedns serve` caps how far V8's old generation grows past what is live (src/heap-growth.ts),
// unless node was started with its own --heap-growing-percent.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyHeapGrowth, HEAP_GROWTH_PERCENT } from '../../src/heap-growth.js';
import { ROOT } from '../support/demo.js';
import { startFedns } from '../support/fedns.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('which heap growth runs', () => {
  it('fedns sets its own when node has none', () => {
    const set: string[] = [];
    const g = applyHeapGrowth(['--max-old-space-size=256', '--enable-source-maps'], HEAP_GROWTH_PERCENT, (f) => set.push(f));
    expect(set).toEqual(['--heap-growing-percent=50']);
    expect(g).toEqual({ setting: '50 %', source: 'fedns' });
  });

  it("node's own flag, in either spelling, is left alone", () => {
    for (const flag of ['--heap-growing-percent=0', '--heap_growing_percent=80']) {
      const set: string[] = [];
      const g = applyHeapGrowth(['--trace-gc', flag], HEAP_GROWTH_PERCENT, (f) => set.push(f));
      expect(set).toEqual([]);
      expect(g).toEqual({ setting: flag, source: 'node flag' });
    }
  });

  it('serve says which one it runs with', async () => {
    const own = await startFedns({ waitFor: 'listening' });
    cleanups.push(() => own.stop());
    const given = await startFedns({ waitFor: 'listening', nodeArgs: ['--heap-growing-percent=0'] });
    cleanups.push(() => given.stop());
    const started = async (f: typeof own) => (await f.waitForLog((r) => r.msg === 'fedns started', 10_000, '"fedns started"')).heapGrowth;
    expect(await started(own)).toEqual({ setting: '50 %', source: 'fedns' });
    expect(await started(given)).toEqual({ setting: '--heap-growing-percent=0', source: 'node flag' });
  });
});

/**
 * The old generation's limit over its size after a full collection, as V8 reports it
 * (--trace-gc-verbose), in a process that comes to hold about 200 MiB of small objects: the
 * ratio at the largest collection, which must have found at least 32 MiB.
 */
function growth(apply: boolean): Promise<number> {
  const script = `
    import { applyHeapGrowth } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'heap-growth.js'))};
    if (process.env.APPLY === '1') applyHeapGrowth([]);
    const keep = [];
    for (let i = 0; i < 600000; i++) keep.push({ n: i, s: String(i), a: [i], b: [i], c: [i], d: [i] });
    console.log('held', keep.length);`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--trace-gc-verbose', '--input-type=module', '-e', script],
      { env: { ...process.env, APPLY: apply ? '1' : '0' }, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 },
      (e, stdout) => {
        if (e) return reject(e);
        let size = 0;
        let ratio = 0;
        for (const m of stdout.matchAll(/\[HeapController\] Limit: old size: (\d+) KB, new limit: (\d+) KB/g)) {
          if (Number(m[1]) >= size) [size, ratio] = [Number(m[1]), Number(m[2]) / Number(m[1])];
        }
        if (!stdout.includes('held 600000') || size < 32 * 1024) return reject(new Error(`no full collection of 32 MiB or more reported:\n${stdout.slice(-2000)}`));
        resolve(ratio);
      },
    );
  });
}

describe('the heap growth takes effect', () => {
  it('V8 lets the heap grow about 1.5 times what is live, not 4 times', async () => {
    // One after the other: each takes about 270 MiB at its peak.
    const capped = await growth(true);
    const own = await growth(false);
    // Node.js 20: 1.6 (1.5 plus the young generation) against 4.3; Node.js 24: 1.7 against 4.3.
    expect(capped).toBeLessThan(2.2);
    expect(own).toBeGreaterThan(3);
  }, 90_000);
});
