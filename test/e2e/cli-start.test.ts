// `fedns serve` that cannot open a listener stops with one plain line that names the address,
// the reason in words and the configuration field to change (and exit code 1).
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { demoCopy, runCli } from '../support/demo.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function serve(edit: (yaml: string) => string): Promise<{ code: number; plain: string[]; config: string; all: string }> {
  const copy = demoCopy(edit);
  cleanups.push(copy.cleanup);
  const r = await runCli(['serve', '--config', copy.config]);
  return { code: r.code, plain: r.err.split('\n').filter((l) => l.startsWith('fedns: ')), config: copy.config, all: `${r.out}${r.err}` };
}

/** The fatal log line names the field and the reason, without a stack trace: the operator's to fix, not a bug. */
function expectFatalWithoutStack(all: string, field: string): void {
  const fatal = all
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.level === 60);
  expect(fatal).toEqual([expect.objectContaining({ msg: 'cannot start', field, code: 'EADDRINUSE' })]);
  expect(all).not.toMatch(/"stack"|\n\s+at /);
}

describe('a listener that cannot open', () => {
  it('DNS port held by another program: exit 1, the address, why, and "listen" to change', async () => {
    const holder: UdpSocket = createSocket('udp4');
    await new Promise<void>((r) => holder.bind(0, '127.0.0.1', r));
    cleanups.push(() => holder.close());
    const port = holder.address().port;
    const r = await serve((y) => y.replace('127.0.0.1:1053', `127.0.0.1:${port}`).replace('listen: 127.0.0.1:9153', 'listen: null'));
    expect(r.code).toBe(1);
    expect(r.plain).toEqual([
      `fedns: cannot start: cannot listen for DNS (UDP and TCP) on 127.0.0.1:${port}: the address is already in use (by another fedns, or another program?); change "listen" in ${r.config}`,
    ]);
    expectFatalWithoutStack(r.all, 'listen');
  });

  it('ops port held by another program: exit 1 and "ops.listen" to change', async () => {
    const holder: Server = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    cleanups.push(() => holder.close());
    const port = (holder.address() as { port: number }).port;
    const r = await serve((y) => y.replace('127.0.0.1:1053', '127.0.0.1:0').replace('listen: 127.0.0.1:9153', `listen: 127.0.0.1:${port}`));
    expect(r.code).toBe(1);
    expect(r.plain).toEqual([`fedns: cannot start: cannot listen for ops HTTP on 127.0.0.1:${port}: the address is already in use (by another fedns, or another program?); change "ops.listen" in ${r.config}`]);
    expectFatalWithoutStack(r.all, 'ops.listen');
  });
});

describe('serve --log-level', () => {
  // A level pino does not know stopped serve with pino's stack trace.
  it('a level that is none of the log levels: exit 1, the levels it takes, no stack trace', async () => {
    const copy = demoCopy();
    cleanups.push(copy.cleanup);
    const r = await runCli(['serve', '--config', copy.config, '--log-level', 'bogus']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: option '--log-level <level>' argument 'bogus' is invalid\. Allowed choices are fatal, error, warn, info, debug, trace, silent\.$/m);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.out).toBe('');
  });
});
