// Logging settings on reload: log.queries applies at once; log.level, which the loggers already
// made carry, is said to apply at the next restart rather than ignored in silence.
import { describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { encodeQuery } from '../../src/wire/message.js';
import { startPrimary, tcpExchange, udpExchange } from '../transfer/harness.js';

describe('reloading log settings', () => {
  it('log.queries turns query lines on and off; a new log.level is logged as applying at the next restart', async () => {
    const p = await startPrimary({ extra: { log: { level: 'info', queries: false } } });
    try {
      const ask = () => udpExchange(p.port, encodeQuery('example.com.', RRType.SOA));
      await ask();
      expect(p.logs.find('query')).toEqual([]);
      await p.fedns.reload({ ...p.fedns.config, log: { level: 'info', queries: true } });
      await ask();
      expect(p.logs.find('query').length).toBe(1);
      // Who asked, over either transport: answers differ by client (traffic policies, ACLs).
      await tcpExchange(p.port, encodeQuery('example.com.', RRType.NS));
      expect(p.logs.find('query').map((l) => [l.transport, l.qtype, l.client])).toEqual([
        ['udp', 'SOA', '127.0.0.1'],
        ['tcp', 'NS', '127.0.0.1'],
      ]);
      await p.fedns.reload({ ...p.fedns.config, log: { level: 'debug', queries: false } });
      await ask();
      expect(p.logs.find('query').length).toBe(2);
      expect(p.logs.find('log.level changed: it takes effect at the next restart').length).toBe(1);
      // What runs is still info: going back to it is no change, and the configuration in force says so.
      expect(p.fedns.config.log.level).toBe('info');
      await p.fedns.reload({ ...p.fedns.config, log: { level: 'info', queries: false } });
      expect(p.logs.find('configuration reloaded').length).toBe(3);
      expect(p.logs.find('log.level changed: it takes effect at the next restart').length).toBe(1);
    } finally {
      await p.stop();
    }
  });
});
