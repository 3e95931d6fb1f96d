/**
 * A NOTIFY target is a secondary to send datagrams to: port 0 is no such thing. Node's dgram
 * send() throws ERR_SOCKET_BAD_PORT synchronously for port 0, from the notifier's coalescing
 * timer, i.e. an uncaught exception that ends the process at the first zone change (and the
 * targets listed after it are never told). The configuration must refuse it, naming the field.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig, ConfigError } from '../../src/config/load.js';
import { addCluster, fillCluster, readdress, sleep, startPrimary, type Primary } from './harness.js';

const base = { domain: 'example.com.', federation: 'fed', clusters: [], listen: ['127.0.0.1:1053'] };

describe('NOTIFY targets with port 0', () => {
  it.each([
    ['transfer.notify', { transfer: { notify: ['127.0.0.1:0'] } }],
    ['mcs.notify', { mcs: { enabled: true, notify: ['127.0.0.1:0'] } }],
  ])('%s: [127.0.0.1:0] is refused by the configuration', (field, raw) => {
    let err: unknown;
    try {
      buildConfig({ ...base, ...raw }, '/etc/fedns/fedns.yaml', '/etc/fedns');
    } catch (e) {
      err = e;
    }
    expect(err, `${field} with port 0 was accepted`).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(new RegExp(field.replace('.', '\\.')));
  });

  let p: Primary | undefined;
  afterEach(async () => {
    await p?.stop();
    p = undefined;
  });

  it('never throws out of the notifier (an uncaught exception ends fedns)', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      try {
        p = await startPrimary({ transfer: { allow: ['127.0.0.1'], notify: ['127.0.0.1:0'], notifyDelay: 0.01 } });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError); // refused up front: nothing can throw later
        return;
      }
      const c = addCluster(p);
      fillCluster(c, 0, 3);
      const z = await p.settled(100);
      readdress(c, 1, 5);
      await p.waitForZone((x) => x.serial !== z.serial);
      await sleep(300);
      expect(uncaught.map(String)).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
