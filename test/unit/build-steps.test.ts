// How the README, the benchmarks and the test helpers tell a reader to build: `npm run build`.
// TypeScript alone (`tsc -p tsconfig.json`) leaves out dist/vendor/kube-config.js, the kubeconfig
// reader that `fedns serve` and the in-process test harness load for every kube cluster, so a
// reader following such a step gets "cannot load the kubeconfig reader" on a fresh checkout.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/demo.js';

/** The .ts files under `dir`, recursively. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('build steps', () => {
  it('the README, benchmarks and tests name npm run build, never tsc alone, as the build', () => {
    const self = fileURLToPath(import.meta.url);
    const files = [join(ROOT, 'README.md'), ...sources(join(ROOT, 'benchmarks')), ...sources(join(ROOT, 'test'))].filter((f) => f !== self);
    const tscAlone: string[] = [];
    for (const f of files) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          // The type check of the tests (tsconfig.test.json) is another command.
          if (/\btsc -p tsconfig\.json\b/.test(line) && !line.includes('bundle-kube-config'))
            tscAlone.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(tscAlone).toEqual([]);
  });
});
