// mcs settings other than notify apply at the next restart: a reload keeps the running mcs.domain.
// The new file is validated with its own mcs, so a file that moves `domain` onto (or around) the
// running clusterset zone, while it also moves or turns off mcs, passed validation and put two
// zones with one apex in force: every federation name under it answered NXDOMAIN from the
// clusterset zone. Such a reload must be refused, naming the file and the field, and the running
// zone kept.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { startDemo } from '../support/demo.js';
import { udpExchange } from '../transfer/harness.js';

type Demo = Awaited<ReturnType<typeof startDemo>>;

async function rcodeOf(port: number, name: string): Promise<number | undefined> {
  const reply = await udpExchange(port, encodeQuery(name, RRType.A), 1000);
  return reply ? decodeMessage(reply).rcode : undefined;
}

describe('a reload that moves the domain onto the running clusterset zone', () => {
  let demo: Demo | undefined;
  afterEach(async () => {
    await demo?.stop();
    demo = undefined;
  });

  for (const [what, mcs] of [
    ['while moving mcs.domain away', '  domain: other.local.'],
    ['while turning mcs off', '  enabled: false'],
  ] as const) {
    it(`is refused ${what}, naming the file and the field, and the running zone keeps answering`, async () => {
      demo = await startDemo();
      const file = `${demo.dir}/fedns.yaml`;
      const text = readFileSync(file, 'utf8');
      const edit = text.replace(/^domain: .*$/m, 'domain: clusterset.local.').replace(mcs.includes('enabled') ? /^ {2}enabled: true.*$/m : /^ {2}domain: clusterset\.local\.$/m, mcs);
      expect(edit).not.toBe(text);
      writeFileSync(file, edit);
      // The file on its own is valid: its mcs is moved away or off.
      const next = loadConfig(file, { reload: true });
      expect(demo.server.config.mcs.domain).toBe('clusterset.local.');
      let error: unknown;
      try {
        await demo.server.reload(next);
      } catch (e) {
        error = e;
      }
      const f = demo.server.federation;
      await new Promise((r) => setTimeout(r, 100));
      // Never two zones with one apex.
      expect(f.snapshot.domain).not.toBe(f.clusterSetSnapshot?.domain);
      expect(error, 'the reload is refused').toBeInstanceOf(Error);
      expect(String((error as Error).message)).toContain(file);
      expect(String((error as Error).message)).toMatch(/domain/);
      expect(demo.server.config.domain).toBe('example.com.');
      expect(await rcodeOf(demo.port, 'nginx.default.fed.example.com.')).toBe(Rcode.NOERROR);
    });
  }
});
