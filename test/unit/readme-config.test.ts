// The configuration README.md shows: every ```yaml block is a valid configuration, and where the
// main example and the sections' blocks spell out a value they call a default, it is the default.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema } from '../../src/config/schema.js';
import { ROOT } from '../support/demo.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const blocks = README.split('```yaml\n')
  .slice(1)
  .map((b) => b.slice(0, b.indexOf('```')));

/** The README's placeholders, as an operator fills them in. */
function filled(block: string): unknown {
  return parse(block.replace('"base64..."', '"MTIzNDU2Nzg5MDEyMzQ1Njc4OTA="'));
}

const defaults = configSchema.parse({});

describe('README configuration blocks', () => {
  it('has the main example, rate limiting and transfers', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
  });

  it.each(blocks.map((b, i) => [i, b] as const))('block %i is a valid configuration', (_i, block) => {
    const r = configSchema.safeParse(filled(block));
    expect(r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([]);
  });

  it('the main example spells out the defaults of every section it shows but clusters and identity', () => {
    const main = configSchema.parse(filled(blocks.find((b) => b.startsWith('domain:'))!));
    for (const k of ['domain', 'federation', 'listen', 'ttl', 'selection', 'addressMode', 'health', 'tcp', 'udp', 'ops', 'log', 'hostnames', 'queries', 'rateLimit', 'policy', 'maxAddresses', 'locality', 'clients'] as const)
      expect(main[k], k).toEqual(defaults[k]);
    const { mname: _m, rname: _r, ...soaTimers } = main.soa;
    const { mname: _dm, rname: _dr, ...defaultTimers } = defaults.soa;
    expect(soaTimers).toEqual(defaultTimers);
  });

  it('the rate-limiting block: every setting but the rate is the default', () => {
    const rrl = configSchema.parse(filled(blocks.find((b) => b.startsWith('rateLimit:'))!)).rateLimit;
    const { responsesPerSecond, nodataPerSecond, nxdomainsPerSecond, errorsPerSecond, ...rest } = rrl;
    expect([responsesPerSecond, nodataPerSecond, nxdomainsPerSecond, errorsPerSecond]).toEqual([20, 20, 20, 20]);
    const { responsesPerSecond: _r, nodataPerSecond: _n, nxdomainsPerSecond: _x, errorsPerSecond: _e, ...restDefaults } = defaults.rateLimit;
    expect(rest).toEqual(restDefaults);
  });

  it('the traffic-policy block: the global settings shown are the defaults', () => {
    const t = configSchema.parse(filled(blocks.find((b) => b.includes('clientNetworks: [10.8.0.0/14]   #'))!));
    expect([t.policy, t.maxAddresses, t.locality]).toEqual([defaults.policy, defaults.maxAddresses, defaults.locality]);
    expect(t.clusters[0].clientNetworks).toEqual(['10.8.0.0/14']);
  });

  it('the transfer block: notifyDelay and journal are the defaults', () => {
    const t = configSchema.parse(filled(blocks.find((b) => b.startsWith('transfer:'))!)).transfer;
    expect(t.notifyDelay).toBe(defaults.transfer.notifyDelay);
    expect(t.journal).toEqual(defaults.transfer.journal);
  });
});
