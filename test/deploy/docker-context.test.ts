// What `docker build .` sends to the build: the image compiles everything itself (dist, the native
// addon, node_modules), so nothing the checkout built may reach the build stage. A host-built
// native/build (its Makefile names the host's Node.js headers and paths) would make the build
// stage's addon build fail and ship the host's .node file instead.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/demo.js';

const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim().replace(/^\/+|\/+$/g, ''))
  .filter((l) => l && !l.startsWith('#'));

describe('.dockerignore', () => {
  it('keeps the checkout\'s build outputs out of the build context', () => {
    for (const p of ['node_modules', 'dist', 'native/build']) expect(ignored, p).toContain(p);
  });

  it('keeps out everything .gitignore lists as built', () => {
    const gitignored = readFileSync(join(ROOT, '.gitignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim().replace(/^\/+|\/+$/g, ''))
      .filter((l) => l && !l.startsWith('#'));
    for (const p of gitignored) {
      const covered = ignored.includes(p) || (p.endsWith('.log') && ignored.includes('*.log'));
      expect(covered, `${p} (in .gitignore) is not in .dockerignore`).toBe(true);
    }
  });
});
