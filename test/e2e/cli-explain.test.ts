// `fedns explain`: asks the running server over its ops listener, or computes the same
// explanation from the configuration with --offline; says what to do when the server is not there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/demo.js';
import { startFedns, type FednsProcess } from '../support/fedns.js';
import { freePort } from '../support/peers.js';

const NAME = 'nginx.default.fed.svc.eu-west-a.eu-west.example.com';

const explain = (config: string, ...args: string[]) => runCli(['explain', '--config', config, ...args]);

// Data age and serial differ between two computations; everything else must not.
const stable = (text: string) => text.replace(/data age \d+s/g, 'data age Ns').replace(/serial \d+/, 'serial N');

describe('fedns explain', () => {
  let f: FednsProcess;
  let opsPort: number;
  beforeAll(async () => {
    opsPort = await freePort();
    f = await startFedns({ edit: (y) => y.replace('ops: { listen: null }', `ops: { listen: 127.0.0.1:${opsPort} }`) });
  });
  afterAll(async () => {
    await f?.stop();
  });

  it('asks the running server, and --offline computes the same explanation', async () => {
    const online = await explain(f.config, NAME);
    expect(online.code, online.err).toBe(0);
    const lines = online.out.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${NAME.replace(/\./g, '\\.')}\\. A: NOERROR \\(serial \\d+\\)$`));
    expect(lines).toContain(`    ${NAME}. 30 IN CNAME nginx.default.fed.svc.eu-west.example.com.`);
    expect(lines.some((l) => /^ {4}- charlie \[live, .*\] no ready endpoint in this cluster$/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('  why: zone eu-west-a has no healthy address'))).toBe(true);
    const offline = await explain(f.config, NAME, '--offline');
    expect(offline.code, offline.err).toBe(0);
    expect(stable(offline.out)).toBe(stable(online.out));
    const json = JSON.parse((await explain(f.config, NAME, 'A', '--json')).out) as { rcode: string };
    expect(json.rcode).toBe('NOERROR');
  });

  it('--client answers as that client gets it, online and offline alike', async () => {
    const online = await explain(f.config, 'nginx.default.fed.example.com', '--client', '127.0.0.2');
    expect(online.code, online.err).toBe(0);
    expect(online.out).toContain('    nginx.default.fed.example.com. 30 IN A 192.0.2.10\n  service');
    expect(online.out).toContain('    client 127.0.0.2 (by source address): cluster alpha, network 127.0.0.2/32 [region us-east, zones us-east-a]\n      A tier cluster: 192.0.2.10\n');
    const offline = await explain(f.config, 'nginx.default.fed.example.com', '--client', '127.0.0.2', '--offline');
    expect(stable(offline.out)).toBe(stable(online.out));
    const bad = await explain(f.config, 'nginx.default.fed.example.com', '--client', 'somewhere', '--offline');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('client "somewhere" is not an IP address');
  });

  it('a server that is not running: exit 1 and a hint to use --offline', async () => {
    const elsewhere = await freePort();
    const { writeFileSync, readFileSync } = await import('node:fs');
    const other = `${f.config}.down.yaml`;
    writeFileSync(other, readFileSync(f.config, 'utf8').replace(`listen: 127.0.0.1:${opsPort}`, `listen: 127.0.0.1:${elsewhere}`));
    const r = await explain(other, NAME);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^fedns: cannot reach the running server at 127\\.0\\.0\\.1:${elsewhere} .*is it running\\? \\(or use --offline\\)\\n$`));
  });
});
