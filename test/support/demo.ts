// The demo configuration as tests use it: loaded in-process, or copied to a scratch directory.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEMO_CONFIG = join(ROOT, 'config', 'fedns.yaml');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');

/** Copies config/ to a scratch directory, with `edit` applied to the YAML text. */
export function demoCopy(edit: (yaml: string) => string = (y) => y): { dir: string; config: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fedns-demo-'));
  cpSync(join(ROOT, 'config', 'demo'), join(dir, 'demo'), { recursive: true });
  const config = join(dir, 'fedns.yaml');
  writeFileSync(config, edit(readFileSync(DEMO_CONFIG, 'utf8')));
  return { dir, config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
