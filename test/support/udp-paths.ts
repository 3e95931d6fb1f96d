/**
 * The two UDP paths fedns can answer on, for tests that run against both:
 *
 *   describe.each(UDP_PATHS)('... (UDP $name)', ({ batch }) => { ... startFedns({ edit: udpBatch(batch) }) ... })
 *
 * `dgram` always runs. `batched` (udp.batch: on) runs when the native addon is built; without
 * it the batched cases are skipped with a warning, and FEDNS_STRICT_PEERS=1 (CI, which has a
 * compiler) makes a missing addon a failure instead, so the batched path is really exercised.
 */
import { loadUdpBatch, type UdpBatchMode } from '../../src/server/udp-batch.js';
import { withYaml } from './fedns.js';
import { strictPeers } from './peers.js';

const { addon, error } = loadUdpBatch();
if (!addon) {
  const why = `the native UDP addon is not built (${error}): run npm run build with python3, make and a C compiler`;
  if (strictPeers()) throw new Error(`${why}; FEDNS_STRICT_PEERS=1 forbids skipping the batched UDP path`);
  process.stderr.write(`WARNING: ${why}; the batched UDP path's tests are skipped\n`);
}

/** True when the batched path can run here. */
export const hasUdpAddon = addon !== undefined;

export interface UdpPathCase {
  name: 'batched' | 'dgram';
  batch: Extract<UdpBatchMode, 'on' | 'off'>;
}

/** Both paths where the addon is built, dgram only otherwise. */
export const UDP_PATHS: UdpPathCase[] = [
  { name: 'dgram', batch: 'off' },
  ...(hasUdpAddon ? [{ name: 'batched', batch: 'on' } as const] : []),
];

/** An edit selecting the path, composed after `then` (another edit of the demo YAML). */
export function udpBatch(batch: UdpBatchMode, then: (yaml: string) => string = (y) => y): (yaml: string) => string {
  return (yaml) => withYaml(`udp: { batch: ${batch} }`)(then(yaml));
}
