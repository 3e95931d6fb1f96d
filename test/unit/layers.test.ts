/**
 * Imports run one way (README, How it works): the wire codec under everything, then
 * cluster → federation → zone → server, with configuration, operations and the commands on top.
 * This reads every import in src/ and fails on an arrow that runs back up.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/demo.js';

const SRC = join(ROOT, 'src');

/** What each layer may import besides itself. Top-level modules of src/ are the layer ".". */
const MAY_IMPORT: Record<string, string[]> = {
  wire: [],
  cluster: ['wire', 'shared'],
  zone: ['wire', 'shared'],
  federation: ['cluster', 'zone', 'wire', 'shared'],
  server: ['zone', 'wire', 'shared'],
  config: ['federation', 'wire', 'shared'],
  ops: ['server', 'federation', 'zone', 'cluster', 'wire', 'config', 'shared'],
  join: ['config', 'wire', 'shared'],
  shared: ['wire'],
  app: ['*'],
};
/** Top-level modules: the commands and the server assembly (app), or small helpers any layer uses (shared). */
const TOP: Record<string, string> = { 'app.ts': 'app', 'cli.ts': 'app' };

function layerOf(file: string): string {
  const rel = relative(SRC, file);
  const dir = rel.split('/')[0];
  if (dir === rel) return TOP[rel] ?? 'shared';
  return dir;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const edges: { from: string; to: string; file: string; spec: string }[] = [];
for (const file of sources(SRC)) {
  for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = resolve(dirname(file), m[1].replace(/\.js$/, '.ts'));
    edges.push({ from: layerOf(file), to: layerOf(target), file: relative(ROOT, file), spec: m[1] });
  }
}

describe('layers', () => {
  it('every layer of src/ is known', () => {
    const layers = new Set(sources(SRC).map(layerOf));
    expect([...layers].filter((l) => !(l in MAY_IMPORT))).toEqual([]);
    expect(edges.length).toBeGreaterThan(50);
  });

  it('no import runs back up', () => {
    const back = edges
      .filter((e) => e.from !== e.to && !MAY_IMPORT[e.from].includes('*') && !MAY_IMPORT[e.from].includes(e.to))
      .map((e) => `${e.file} (${e.from}) imports ${e.spec} (${e.to})`);
    expect(back).toEqual([]);
  });
});
