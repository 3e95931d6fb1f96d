// Worker scripts a test writes for the page reader (src/cluster/page-reader.ts) to run instead of
// its own worker: each starts with parentPort imported, and all go when the tests around them end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

/** A writer of worker scripts into a temporary directory removed after the current file's (or describe's) tests. */
export function workerScripts(prefix: string): (name: string, text: string) => string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return (name, text) => {
    const file = join(dir, name);
    writeFileSync(file, `import { parentPort } from 'node:worker_threads';\n${text}\n`);
    return file;
  };
}
