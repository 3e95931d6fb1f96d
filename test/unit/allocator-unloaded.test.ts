// `udp.batch: off` keeps the native addon out of the process: trimming the C allocator
// (src/native.ts) uses only an addon the UDP path loaded, and loads none itself. This file
// imports nothing that loads the addon (vitest runs each file in a module graph of its own).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chooseUdpPath } from '../../src/server/udp-batch.js';
import { trimAllocator } from '../../src/native.js';

const addonMapped = () => readFileSync('/proc/self/maps', 'utf8').includes('fedns_udp.node');

describe.runIf(process.platform === 'linux')('trimming without the addon loaded', () => {
  it('does nothing and loads no addon when the UDP path is dgram by choice', () => {
    expect(chooseUdpPath('off').path).toBe('dgram');
    expect(trimAllocator()).toBeUndefined();
    expect(addonMapped()).toBe(false);
  });
});
