// Node objects for clientNetworks: auto: what is kept of a node (pod CIDRs, InternalIPs, the
// region label), how hostile values are ignored and counted, and the bound on what one cluster
// contributes. Nodes are read from Node manifests by the files source as from a watch.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalNetwork } from '../../src/address.js';
import { FileClusterSource } from '../../src/cluster/files.js';
import { NodeNetworks } from '../../src/cluster/nodes.js';
import { MAX_NODE_NETWORKS, ObjectError, slimNode } from '../../src/cluster/objects.js';
import { Federation } from '../../src/federation/federation.js';
import { createLogger } from '../../src/ops/log.js';
import { testFederationSettings } from '../support/federation.js';
import { eventually, node } from '../support/kube-harness.js';

function cluster() {
  const fed = new Federation(testFederationSettings());
  const state = fed.addCluster({ name: 'one', region: 'r1', zones: [], addressMode: 'loadBalancer', gracePeriod: 300 });
  const events: string[][] = [];
  fed.on('clientNetworks', (c) => events.push([...c.learnedNetworks]));
  return { fed, state, events };
}

describe('canonicalNetwork', () => {
  it('spells a network one way: host bits cleared, IPv6 compressed, a bare address only as a host', () => {
    expect(canonicalNetwork('10.244.1.7/24')).toBe('10.244.1.0/24');
    expect(canonicalNetwork('10.0.0.5', true)).toBe('10.0.0.5/32');
    expect(canonicalNetwork('10.0.0.5')).toBeUndefined();
    expect(canonicalNetwork('2001:DB8:0:0:1::/64')).toBe('2001:db8::/64');
    expect(canonicalNetwork('2001:db8::1', true)).toBe('2001:db8::1/128');
    expect(canonicalNetwork('::ffff:192.0.2.1/120')).toBe('::ffff:c000:200/120'); // as canonicalAddress spells it
    expect(canonicalNetwork('10.1.2.3/0')).toBe('0.0.0.0/0');
    for (const bad of ['10.0.0.0/33', '2001:db8::/129', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8/8', '10.0.0/8', 'fe80::1%eth0/64', 'x/8', '', '/8', '10.0.0.0/ 8'])
      expect(canonicalNetwork(bad, true), bad).toBeUndefined();
  });
});

describe('slimNode', () => {
  it('keeps the pod CIDRs and InternalIPs (canonical, sorted, no repeats) and the region label; nothing else', () => {
    const n = slimNode({
      metadata: { name: 'n1', labels: { 'topology.kubernetes.io/region': 'eu-west', other: 'x' }, resourceVersion: '5' },
      spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], providerID: 'p' },
      status: {
        addresses: [
          { type: 'InternalIP', address: '10.0.0.5' },
          { type: 'InternalIP', address: '2001:DB8::5' },
          { type: 'ExternalIP', address: '203.0.113.9' },
          { type: 'Hostname', address: 'n1' },
        ],
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    });
    expect(n).toEqual({ name: 'n1', networks: ['10.0.0.5/32', '10.244.1.0/24', '2001:db8::5/128', 'fd00:10:244:1::/64'], region: 'eu-west' });
  });

  it('ignores, and lists, values that are no network: garbage, a prefix out of range, a CIDR as an address, a prefix too wide', () => {
    const n = slimNode({
      metadata: { name: 'n2' },
      spec: { podCIDR: 'not-a-cidr', podCIDRs: ['10.244.2.0/33', '10.244.2.0', '0.0.0.0/0', '::/0', 42, null, '10.244.2.0/24'] },
      status: { addresses: [{ type: 'InternalIP', address: '10.0.0.0/8' }, { type: 'InternalIP', address: '999.1.1.1' }, { type: 'InternalIP' }, 'junk'] },
    });
    expect(n.networks).toEqual(['10.244.2.0/24']);
    expect(n.ignored?.map((v) => `${v.reason}: ${v.value}`)).toEqual([
      'node network: not-a-cidr',
      'node network: 10.244.2.0/33',
      'node network: 10.244.2.0',
      'node network: 0.0.0.0/0',
      'node network: ::/0',
      'node network: 10.0.0.0/8',
      'node network: 999.1.1.1',
    ]);
  });

  it(`keeps at most ${MAX_NODE_NETWORKS} networks of one node; the rest are counted`, () => {
    const ips = Array.from({ length: 1000 }, (_, i) => `10.9.${i >> 8}.${i & 255}`);
    const n = slimNode(node('big', [], ips));
    expect(n.networks).toHaveLength(MAX_NODE_NETWORKS);
    expect(n.ignored).toEqual([{ reason: 'network limit', value: `${1000 - MAX_NODE_NETWORKS} values past the ${MAX_NODE_NETWORKS} networks a node may have` }]);
  });

  it('a node without a name cannot be read', () => {
    expect(() => slimNode({ spec: { podCIDR: '10.0.0.0/24' } })).toThrow(ObjectError);
    expect(() => slimNode({ metadata: 'x' })).toThrow(ObjectError);
  });
});

describe('NodeNetworks', () => {
  it('the union of the nodes, updated when a node changes or goes; unchanged nodes change nothing', () => {
    const { fed, state, events } = cluster();
    const nets = new NodeNetworks(state);
    nets.replace([slimNode(node('a', ['10.244.0.0/24'], ['10.0.0.1'])), slimNode(node('b', ['10.244.1.0/24'], ['10.0.0.2']))]);
    expect(state.learnedNetworks).toEqual([]); // batched until flush
    nets.flush();
    expect(state.learnedNetworks).toEqual(['10.0.0.1/32', '10.0.0.2/32', '10.244.0.0/24', '10.244.1.0/24']);
    nets.upsert(slimNode(node('a', ['10.244.0.0/24'], ['10.0.0.1'])));
    nets.flush();
    expect(events).toHaveLength(1);
    nets.upsert(slimNode(node('a', ['10.244.0.0/24'], ['10.0.0.9'])));
    nets.remove('b');
    nets.flush();
    expect(state.learnedNetworks).toEqual(['10.0.0.9/32', '10.244.0.0/24']);
    nets.replace([slimNode(node('c', ['10.244.5.0/24']))]);
    nets.flush();
    expect(state.learnedNetworks).toEqual(['10.244.5.0/24']);
    nets.clear();
    expect(state.learnedNetworks).toEqual([]);
    expect(events).toHaveLength(4);
    fed.close();
  });

  it('with a publishing interval, the first change is published at once and a burst after it once, at the end of the interval', async () => {
    const { fed, state, events } = cluster();
    const nets = new NodeNetworks(state, 10_000, 100);
    nets.upsert(slimNode(node('a', ['10.244.0.0/24'])));
    nets.flush();
    expect(events).toHaveLength(1);
    for (let i = 1; i <= 50; i++) {
      nets.upsert(slimNode(node(`n${i}`, [`10.245.${i}.0/24`])));
      nets.flush();
    }
    expect(events).toHaveLength(1);
    await eventually(() => events.length, (n) => n === 2, 'the burst published', 2000);
    expect(state.learnedNetworks).toHaveLength(51);
    nets.upsert(slimNode(node('late', ['10.246.0.0/24'])));
    nets.flush();
    nets.clear(); // a publication waiting is dropped with the nodes
    await new Promise((r) => setTimeout(r, 150));
    expect(state.learnedNetworks).toEqual([]);
    expect(events).toHaveLength(3);
    fed.close();
  });

  it('counts ignored values once per change of a node, not per unchanged update', () => {
    const { fed, state } = cluster();
    const nets = new NodeNetworks(state);
    const bad = () => slimNode(node('a', ['10.244.0.0/99'], ['10.0.0.1']));
    nets.upsert(bad());
    nets.upsert(bad());
    nets.flush();
    expect(fed.ignored.count('node network')).toBe(1);
    expect(state.learnedNetworks).toEqual(['10.0.0.1/32']);
    fed.close();
  });

  it('a cluster contributes at most the limit (the first in sort order); past it, reported when the excess changes', () => {
    const { fed, state } = cluster();
    const nets = new NodeNetworks(state, 50);
    nets.replace(Array.from({ length: 40 }, (_, i) => slimNode(node(`n${i}`, [`10.${100 + i}.0.0/24`], [`10.0.${i}.1`]))));
    nets.flush();
    expect(state.learnedNetworks).toHaveLength(50);
    expect(state.learnedNetworks[0]).toBe('10.0.0.1/32');
    expect(fed.ignored.count('network limit')).toBe(1);
    nets.upsert(slimNode(node('n0', ['10.100.0.0/24'], ['10.0.0.2']))); // same excess: not reported again
    nets.flush();
    expect(fed.ignored.count('network limit')).toBe(1);
    nets.remove('n39');
    nets.flush();
    expect(fed.ignored.count('network limit')).toBe(2);
    for (let i = 0; i < 20; i++) nets.remove(`n${i}`);
    nets.flush();
    expect(state.learnedNetworks).toHaveLength(38);
    expect(fed.ignored.count('network limit')).toBe(2);
    fed.close();
  });
});

describe('files source: Node manifests with clientNetworks: auto', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedns-nodes-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('learns the networks of the Nodes in the directory and follows changes; off, it learns none; switched on and off in place', async () => {
    const { fed, state } = cluster();
    writeFileSync(join(dir, 'nodes.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [node('a', ['10.244.0.0/24'], ['10.0.0.1']), node('b', ['bogus'], ['10.0.0.2'])] }));
    const source = new FileClusterSource(state, dir, createLogger('silent'), { pollMs: 60_000, learnNetworks: true });
    source.start();
    try {
      expect(state.health).toBe('live');
      expect(state.learnedNetworks).toEqual(['10.0.0.1/32', '10.0.0.2/32', '10.244.0.0/24']);
      expect(fed.ignored.count('node network')).toBe(1);
      writeFileSync(join(dir, 'nodes.json'), JSON.stringify({ apiVersion: 'v1', kind: 'NodeList', items: [{ metadata: { name: 'a' }, spec: { podCIDRs: ['10.244.7.0/24'] } }] }));
      await eventually(() => state.learnedNetworks.join(), (v) => v === '10.244.7.0/24', 'the changed Node learned', 5000);
      source.setLearnNetworks(false);
      expect(state.learnedNetworks).toEqual([]);
      source.setLearnNetworks(true);
      expect(state.learnedNetworks).toEqual(['10.244.7.0/24']);
    } finally {
      source.stop();
      fed.close();
    }
  });

  it('without auto, Nodes feed nothing and a source started so clears what a previous one learned', () => {
    const { fed, state } = cluster();
    state.setLearnedNetworks(['10.1.0.0/16']);
    writeFileSync(join(dir, 'n.yaml'), 'apiVersion: v1\nkind: Node\nmetadata: { name: a }\nspec: { podCIDR: 10.244.0.0/24 }\n');
    const source = new FileClusterSource(state, dir, createLogger('silent'), { pollMs: 60_000 });
    source.start();
    try {
      expect(state.health).toBe('live');
      expect(state.learnedNetworks).toEqual([]);
    } finally {
      source.stop();
      fed.close();
    }
  });
});
