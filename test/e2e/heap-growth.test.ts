// `fedns serve` caps how far V8's old generation grows past what is live (src/heap-growth.ts),
// unless node was started with its own --heap-growing-percent or V8's heap limit is small enough
// that V8 itself grows less (a pod's memory limit sizes it).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyHeapGrowth, HEAP_GROWTH_PERCENT, MIN_HEAP_LIMIT } from '../../src/heap-growth.js';
import { ROOT } from '../support/demo.js';
import { startFedns } from '../support/fedns.js';

const MiB = 1024 * 1024;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

describe('which heap growth runs', () => {
  it('fedns sets its own when node has none and the heap limit is large', () => {
    const set: string[] = [];
    const g = applyHeapGrowth(['--max-old-space-size=4096', '--enable-source-maps'], 4144 * MiB, HEAP_GROWTH_PERCENT, (f) => set.push(f));
    expect(set).toEqual(['--heap-growing-percent=50']);
    expect(g).toEqual({ setting: '50 %', source: 'fedns' });
  });

  it("node's own flag, in either spelling, is left alone", () => {
    for (const flag of ['--heap-growing-percent=0', '--heap_growing_percent=80']) {
      const set: string[] = [];
      const g = applyHeapGrowth(['--trace-gc', flag], 4144 * MiB, HEAP_GROWTH_PERCENT, (f) => set.push(f));
      expect(set).toEqual([]);
      expect(g).toEqual({ setting: flag, source: 'node flag' });
    }
  });

  it("a small heap limit (a 512 MiB pod's: 259 MiB) keeps V8's own growth, which is tighter there", () => {
    for (const limit of [259 * MiB, 304 * MiB, MIN_HEAP_LIMIT - 1]) {
      const set: string[] = [];
      const g = applyHeapGrowth([], limit, HEAP_GROWTH_PERCENT, (f) => set.push(f));
      expect(set).toEqual([]);
      expect(g).toEqual({ setting: `V8's own (heap limit ${Math.round(limit / MiB)} MiB)`, source: 'V8' });
    }
    const set: string[] = [];
    applyHeapGrowth([], MIN_HEAP_LIMIT, HEAP_GROWTH_PERCENT, (f) => set.push(f));
    expect(set).toEqual(['--heap-growing-percent=50']);
  });

  it('serve says which one it runs with', async () => {
    const own = await startFedns({ waitFor: 'listening', nodeArgs: ['--max-old-space-size=4096'] });
    cleanups.push(() => own.stop());
    const given = await startFedns({ waitFor: 'listening', nodeArgs: ['--heap-growing-percent=0'] });
    cleanups.push(() => given.stop());
    const small = await startFedns({ waitFor: 'listening', nodeArgs: ['--max-old-space-size=256'] });
    cleanups.push(() => small.stop());
    const started = async (f: typeof own) => (await f.waitForLog((r) => r.msg === 'fedns started', 10_000, '"fedns started"')).heapGrowth;
    expect(await started(own)).toEqual({ setting: '50 %', source: 'fedns' });
    expect(await started(given)).toEqual({ setting: '--heap-growing-percent=0', source: 'node flag' });
    expect(await started(small)).toEqual({ setting: expect.stringMatching(/^V8's own \(heap limit \d+ MiB\)$/), source: 'V8' });
  });
});

/**
 * The old generation's limit over its size after a full collection, as V8 reports it
 * (--trace-gc-verbose), in a process that comes to hold `objects` × about 330 bytes of small
 * objects and calls applyHeapGrowth (with no node flag of its own) when `apply`: the ratio at the
 * largest collection, which must have found at least 32 MiB. The young generation is kept at
 * 1 MiB semi-spaces so that V8's limit (which adds the young generation's capacity) is the old
 * generation's growth alone, on Node.js 20 and 24 alike.
 */
function growth(apply: boolean, maxOldSpaceMiB: number, objects: number): Promise<number> {
  const script = `
    import { applyHeapGrowth } from ${JSON.stringify(join(ROOT, 'dist', 'src', 'heap-growth.js'))};
    if (process.env.APPLY === '1') applyHeapGrowth([]);
    const keep = [];
    for (let i = 0; i < ${objects}; i++) keep.push({ n: i, s: String(i), a: [i], b: [i], c: [i], d: [i] });
    console.log('held', keep.length);`;
  const flags = ['--trace-gc-verbose', `--max-old-space-size=${maxOldSpaceMiB}`, '--max-semi-space-size=1'];
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...flags, '--input-type=module', '-e', script],
      { env: { ...process.env, APPLY: apply ? '1' : '0' }, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 },
      (e, stdout) => {
        if (e) return reject(e);
        let size = 0;
        let ratio = 0;
        for (const m of stdout.matchAll(/\[HeapController\] Limit: old size: (\d+) KB, new limit: (\d+) KB/g)) {
          if (Number(m[1]) >= size) [size, ratio] = [Number(m[1]), Number(m[2]) / Number(m[1])];
        }
        if (!stdout.includes(`held ${objects}`) || size < 32 * 1024) return reject(new Error(`no full collection of 32 MiB or more reported:\n${stdout.slice(-2000)}`));
        resolve(ratio);
      },
    );
  });
}

describe('the heap growth takes effect', () => {
  // One process after the other: each takes up to about 270 MiB at its peak.
  it('with a large heap limit V8 lets the heap grow 1.5 times what is live, not 4 times', async () => {
    const capped = await growth(true, 4096, 600_000);
    const own = await growth(false, 4096, 600_000);
    // Node.js 20 and 24: 1.5 against 4.0 (V8's most, for an old generation of 2 GiB and more).
    expect(capped).toBeGreaterThan(1.45);
    expect(capped).toBeLessThan(1.6);
    expect(own).toBeGreaterThan(3);
  }, 90_000);

  it("with a 512 MiB pod's old generation (256 MiB) the growth stays V8's own, at most 1.3", async () => {
    // About 100 MiB live, well inside the limit.
    const applied = await growth(true, 256, 300_000);
    const own = await growth(false, 256, 300_000);
    expect(own).toBeLessThan(1.4);
    expect(applied).toBeLessThan(1.4);
  }, 90_000);
});
