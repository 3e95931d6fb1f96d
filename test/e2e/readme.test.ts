// Every `dig` example in README.md, run as printed against the demo (on a test port), must print
// what the README shows. Address order rotates between answers, so lines compare as sets.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/demo.js';
import { startFedns, type FednsProcess } from '../support/fedns.js';
import { requirePeer } from '../support/peers.js';

const run = promisify(execFile);

interface Example {
  command: string;
  expected: string[];
}

/** `$ dig ...` lines of the README's console blocks with the output lines that follow them. */
function examples(): Example[] {
  const out: Example[] = [];
  const blocks = readFileSync(join(ROOT, 'README.md'), 'utf8').split('```console\n').slice(1);
  for (const block of blocks) {
    let current: Example | undefined;
    for (const line of block.slice(0, block.indexOf('```')).split('\n')) {
      if (line.startsWith('$ ')) {
        current = line.startsWith('$ dig ') ? { command: line.slice(2), expected: [] } : undefined;
        if (current) out.push(current);
      } else if (current && line.trim()) current.expected.push(line);
    }
  }
  return out;
}

const hasDig = requirePeer('dig');
const all = examples();

describe.skipIf(!hasDig)('README dig examples', () => {
  let f: FednsProcess;
  beforeAll(async () => {
    f = await startFedns();
  });
  afterAll(async () => {
    await f?.stop();
  });

  it('has examples to check', () => {
    expect(all.length).toBeGreaterThanOrEqual(8);
  });

  it.each(all.map((e) => [e.command, e] as const))('%s', async (_c, ex) => {
    const [digPart, grep] = ex.command.split(' | grep ');
    expect(digPart).toMatch(/^dig (-b 127\.0\.0\.[2-4] )?@127\.0\.0\.1 -p 1053 /);
    const args = digPart.split(/\s+/).slice(1).map((a) => (a === '1053' ? String(f.port) : a));
    const { stdout } = await run('dig', ['+tries=1', '+time=2', ...args]);
    let got = stdout.split('\n').filter((l) => l.trim());
    let want = ex.expected;
    if (grep) {
      got = got.filter((l) => l.includes(grep)).map((l) => l.replace(/id: \d+/, 'id: ...'));
      want = want.map((l) => l.replace(/id: \d+/, 'id: ...'));
    }
    expect(new Set(got)).toEqual(new Set(want));
    expect(got.length).toBe(want.length);
  });
});
