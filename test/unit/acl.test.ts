import { describe, expect, it } from 'vitest';
import { AddressAcl } from '../../src/acl.js';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { Responder } from '../../src/server/responder.js';
import { loadFederation } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/ops/log.js';
import { DEMO_CONFIG } from '../support/demo.js';
import type { ConnectionWriter } from '../../src/server/connection.js';

describe('AddressAcl', () => {
  const acl = new AddressAcl(['192.0.2.0/24', '198.51.100.7', '2001:db8::/32']);
  it.each([
    ['192.0.2.1', true],
    ['192.0.2.255', true],
    ['192.0.3.1', false],
    ['198.51.100.7', true],
    ['198.51.100.8', false],
    ['2001:db8::53', true],
    ['2001:db9::53', false],
    ['::ffff:192.0.2.9', true], // an IPv4 client on a dual-stack socket
    ['::ffff:203.0.113.9', false],
    [undefined, false],
  ])('%s -> %s', (addr, ok) => {
    expect(acl.allows(addr)).toBe(ok);
  });
  it('an empty list allows nobody', () => {
    expect(new AddressAcl([]).allows('127.0.0.1')).toBe(false);
  });
  it.each([
    [['0.0.0.0/0'], '203.0.113.9', true],
    [['0.0.0.0/0'], '2001:db8::1', false],
    [['::/0'], '2001:db8::1', true],
    [['::/0'], '192.0.2.1', false],
    [['10.1.2.3/8'], '10.200.0.1', true], // host bits in the entry are ignored
    [['192.0.2.128/25'], '192.0.2.127', false],
    [['192.0.2.128/25'], '192.0.2.255', true],
    [['255.255.255.255'], '255.255.255.255', true],
    [['2001:db8:0:100::/56'], '2001:db8:0:1ff:ffff::1', true],
    [['2001:db8:0:100::/56'], '2001:db8:0:200::1', false],
    [['2001:DB8::1'], '2001:db8:0:0:0:0:0:1', true],
    [['fe80::/10'], 'fe80::1%eth0', true],
    [['::1'], '::1', true],
    [['::ffff:0:0/96'], '::ffff:192.0.2.1', false], // matched as the IPv4 address it is
    [['2001:db8::c000:201'], '2001:db8::192.0.2.1', true],
    [['192.0.2.0/24'], '192.0.2', false],
    [['192.0.2.0/24'], '192.0.2.256', false],
    [['192.0.2.0/24'], '192.0.2.1.5', false],
    [['::/0'], '2001:db8::1::2', false],
    [['::/0'], '2001:db8:::1', false],
    [['::/0'], '1:2:3:4:5:6:7:8:9', false],
    [['::/0'], 'not-an-address', false],
  ])('%j allows %s: %s', (entries, addr, ok) => {
    expect(new AddressAcl(entries).allows(addr)).toBe(ok);
  });
});

describe('queries.allow in the responder', () => {
  it('answers allowed sources, REFUSED (no AA, question kept) to the others, over UDP and TCP', async () => {
    const fed = await loadFederation(loadConfig(DEMO_CONFIG), createLogger('silent'));
    const r = new Responder(() => fed.snapshot);
    const ask = (from: string, transport: 'udp' | 'tcp' = 'udp') =>
      decodeMessage(
        transport === 'udp'
          ? r.answer(encodeQuery('nginx.default.fed.example.com.', RRType.A), 'udp', undefined, from)!
          : r.answer(encodeQuery('nginx.default.fed.example.com.', RRType.A), 'tcp', { remoteAddress: from } as ConnectionWriter)!,
      );
    expect(ask('203.0.113.50').answers).toHaveLength(2); // no ACL: everyone
    r.queryAcl = new AddressAcl(['10.0.0.0/8']);
    for (const transport of ['udp', 'tcp'] as const) {
      const no = ask('203.0.113.50', transport);
      expect([no.rcode, no.aa, no.answers.length]).toEqual([Rcode.REFUSED, false, 0]);
      expect(no.questions[0].name).toBe('nginx.default.fed.example.com.');
      expect(ask('10.1.2.3', transport).answers).toHaveLength(2);
    }
    fed.close();
  });
});
