// What lies in a `files` cluster's directory cannot stop fedns: a FIFO named like a manifest once
// froze the whole server (the read waited for a writer on the thread that answers queries) and
// hung `fedns check`. Such a file is an error of its cluster, named in the log and by check.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoCopy, runCli } from '../support/demo.js';
import { dig } from '../support/dig.js';
import { startFedns, type FednsProcess } from '../support/fedns.js';
import { requirePeer } from '../support/peers.js';

const hasDig = requirePeer('dig');

describe.skipIf(!hasDig)('a FIFO in a files cluster directory', () => {
  let f: FednsProcess | undefined;
  afterAll(async () => {
    await f?.stop();
  });

  it('serve: the cluster reports the file, and queries are answered', async () => {
    f = await startFedns();
    const pipe = join(f.dir, 'demo', 'alpha', 'pipe.yaml');
    execFileSync('mkfifo', [pipe]);
    const rec = await f.waitForLog((r) => r.msg === 'cannot read cluster manifests; keeping the last good state', 5000, 'the manifest error');
    expect(rec.error).toBe(`${pipe}: not a regular file (a FIFO); fedns reads only regular files: remove it, or give it a name not ending in .yaml, .yml or .json`);
    const r = await dig(['@127.0.0.1', '-p', String(f.port), 'billing.finance.fed.example.com', 'A'], { timeoutMs: 5000 });
    expect(r.status).toBe('NOERROR');
  });
});

describe('fedns check with a FIFO in a files cluster directory', () => {
  const copy = demoCopy();
  afterAll(() => copy.cleanup());

  it('ends, naming the file', async () => {
    execFileSync('mkfifo', [join(copy.dir, 'demo', 'alpha', 'pipe.yaml')]);
    const r = await runCli(['check', '--config', copy.config], 10_000);
    expect(`${r.out}${r.err}`).toContain(`${join(copy.dir, 'demo', 'alpha', 'pipe.yaml')}: not a regular file (a FIFO)`);
  });
});
