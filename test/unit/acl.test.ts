import { describe, expect, it } from 'vitest';
import { AddressAcl } from '../../src/acl.js';
import { Rcode, RRType } from '../../src/dns/constants.js';
import { decodeMessage, encodeQuery } from '../../src/dns/message.js';
import { Responder } from '../../src/dns/responder.js';
import { loadFederation } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/ops/log.js';
import { DEMO_CONFIG } from '../support/demo.js';
import type { ConnectionWriter } from '../../src/dns/connection.js';

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
