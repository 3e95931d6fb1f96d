import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeQuery } from '../../src/wire/message.js';
import { Responder } from '../../src/server/responder.js';
import { Federation } from '../../src/federation/federation.js';
import { Writable } from 'node:stream';
import pino from 'pino';
import { dnsResolver, HostnameAddresses } from '../../src/federation/hostnames.js';
import { createLogger } from '../../src/ops/log.js';
import { startDemo } from '../support/demo.js';
import { seed, testFederationSettings } from '../support/federation.js';

const until = async (ok: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
};

describe('load balancers that publish a hostname', () => {
  it('are resolved, re-resolved when their addresses move, and keep the last addresses when a lookup fails', async () => {
    const dnsAnswers = new Map<string, string[] | Error>([['lb-123.elb.example.net', ['192.0.2.77']]]);
    let lookups = 0;
    const fed = new Federation(testFederationSettings());
    fed.resolveHostnames(
      async (h) => {
        lookups++;
        const a = dnsAnswers.get(h);
        if (a instanceof Error) throw a;
        return a ?? [];
      },
      0.05,
      createLogger('silent'),
    );
    const responder = new Responder(() => fed.snapshot);
    const addrs = () =>
      decodeMessage(responder.answer(encodeQuery('web.ns.fed.example.com.', RRType.A), 'udp')!)
        .answers.map((r) => r.data as string)
        .sort();
    const c = fed.addCluster({ name: 'a', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
    seed(c, [
      { namespace: 'ns', name: 'web', headless: false, ports: [], lbAddresses: [], lbHostnames: ['LB-123.elb.example.net'], labels: {} },
      { namespace: 'ns', name: 'web-x', service: 'web', addressType: 'IPv4', ports: [], endpoints: [{ addresses: ['10.0.0.1'], ready: true }] },
    ]);
    fed.rebuild();
    await until(() => addrs().length > 0);
    expect(addrs()).toEqual(['192.0.2.77']);
    // The load balancer moves: the next refresh serves the new address (never frozen).
    // An address no client can reach (the name's owner may write any) is not served.
    dnsAnswers.set('lb-123.elb.example.net', ['192.0.2.78', '127.0.0.1', '192.0.2.79']);
    await until(() => addrs()[0] === '192.0.2.78');
    expect(addrs()).toEqual(['192.0.2.78', '192.0.2.79']);
    expect(fed.federated('ns/web')?.verdicts?.[0].skipped).toEqual([{ address: '127.0.0.1', reason: 'no client can reach this address' }]);
    // A failing lookup is not an empty answer: the last addresses stay.
    dnsAnswers.set('lb-123.elb.example.net', new Error('timeout'));
    const before = lookups;
    await until(() => lookups > before + 2);
    expect(addrs()).toEqual(['192.0.2.78', '192.0.2.79']);
    // The hostname is gone from the cluster: no more lookups for it.
    seed(c, [{ namespace: 'ns', name: 'web', headless: false, ports: [], lbAddresses: ['192.0.2.1'], lbHostnames: [], labels: {} }]);
    fed.rebuild();
    expect(addrs()).toEqual(['192.0.2.1']);
    const after = lookups;
    await new Promise((r) => setTimeout(r, 150));
    expect(lookups).toBe(after);
    fed.close();
  });
});

describe('a load-balancer hostname that stops existing', () => {
  it('takes its addresses away (NODATA), unlike a lookup that fails; it comes back when the name does', async () => {
    // undefined: the name does not exist (NXDOMAIN: dnsResolver answers no addresses); Error: no answer.
    let answer: string[] | Error = ['192.0.2.90'];
    const fed = new Federation(testFederationSettings());
    fed.resolveHostnames(
      async () => {
        if (answer instanceof Error) throw answer;
        return answer;
      },
      0.05,
      createLogger('silent'),
    );
    const responder = new Responder(() => fed.snapshot);
    const ask = () => decodeMessage(responder.answer(encodeQuery('web.ns.fed.example.com.', RRType.A), 'udp')!);
    const c = fed.addCluster({ name: 'a', region: 'r1', zones: ['z1'], addressMode: 'loadBalancer', gracePeriod: 300 });
    seed(c, [
      { namespace: 'ns', name: 'web', headless: false, ports: [], lbAddresses: [], lbHostnames: ['lb-9.elb.example.net'], labels: {} },
      { namespace: 'ns', name: 'web-x', service: 'web', addressType: 'IPv4', ports: [], endpoints: [{ addresses: ['10.0.0.1'], ready: true }] },
    ]);
    fed.rebuild();
    await until(() => ask().answers.length > 0);
    expect(ask().answers.map((r) => r.data)).toEqual(['192.0.2.90']);
    answer = new Error('timeout');
    await new Promise((r) => setTimeout(r, 150));
    expect(ask().answers.map((r) => r.data)).toEqual(['192.0.2.90']);
    // The load balancer is deleted and its name with it: no stale address is served.
    answer = [];
    await until(() => ask().answers.length === 0);
    const gone = ask();
    expect(gone.rcode).toBe(0);
    expect(gone.answers).toEqual([]);
    expect(fed.federated('ns/web')?.verdicts?.[0].skipped).toEqual([{ address: 'lb-9.elb.example.net', reason: 'load-balancer hostname has no addresses' }]);
    answer = ['192.0.2.91'];
    await until(() => ask().answers.length > 0);
    expect(ask().answers.map((r) => r.data)).toEqual(['192.0.2.91']);
    fed.close();
  });
});

describe('many load-balancer hostnames whose lookups fail', () => {
  it('looks each up once per refresh, all at once, and sums the failures up in one warning per round', async () => {
    const lookups = new Map<string, number>();
    let running = 0;
    let most = 0;
    // A resolver that is down: every lookup fails after a few milliseconds.
    const resolve = async (h: string): Promise<string[]> => {
      lookups.set(h, (lookups.get(h) ?? 0) + 1);
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      throw new Error('timeout');
    };
    const lines: { msg: string; level: number }[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    // A refresh far away: only the lookups of new hostnames run in this test.
    const hosts = new HostnameAddresses(resolve, 3_600_000, () => {}, pino({ level: 'info' }, sink));
    hosts.start();
    try {
      // 300 hostnames arrive in batches, as the services of a list page are built, turn by turn.
      for (let batch = 0; batch < 15; batch++) {
        for (let i = 0; i < 20; i++) hosts.addresses(`lb${batch * 20 + i}.tenant.test`);
        await new Promise((r) => setTimeout(r, 3));
      }
      await until(() => lookups.size === 300 && running === 0, 10_000);
      await new Promise((r) => setTimeout(r, 50));
      expect(lookups.size).toBe(300);
      expect(Math.max(...lookups.values())).toBe(1);
      // Asked at once, not in turns: one tenant's hostnames that never answer hold up no other's.
      expect(most).toBeGreaterThan(16);
      const warnings = lines.filter((l) => l.level === 40);
      expect(warnings.length).toBeGreaterThan(0);
      expect(warnings.length).toBeLessThanOrEqual(15);
      // A refresh looks every one of them up again, once.
      await hosts.refresh();
      expect(Math.max(...lookups.values())).toBe(2);
      expect(Math.min(...lookups.values())).toBe(2);
    } finally {
      hosts.stop();
    }
  });
});

describe('hostname lookups under way', () => {
  it('change no service after stop(), and a hostname dropped meanwhile changes none', async () => {
    const waiting: ((addrs: string[]) => void)[] = [];
    const changed: string[][] = [];
    const hosts = new HostnameAddresses(
      (h) => new Promise<string[]>((resolve) => waiting.push(() => resolve([h.startsWith('a') ? '192.0.2.1' : '192.0.2.2']))),
      3_600_000,
      (s) => changed.push([...s]),
      createLogger('silent'),
    );
    hosts.start();
    hosts.addresses('a.lb.test');
    hosts.use('ns/a', new Set(['a.lb.test']));
    await until(() => waiting.length === 1);
    // Answered after stop: nothing changes (a closed federation is not rebuilt).
    hosts.stop();
    waiting.shift()!([]);
    await new Promise((r) => setTimeout(r, 20));
    expect(changed).toEqual([]);
    expect(hosts.addresses('a.lb.test')).toBeUndefined();
    // A hostname no service uses any more while its lookup runs: its answer changes nothing.
    hosts.use('ns/a', new Set());
    hosts.start();
    hosts.addresses('b.lb.test');
    hosts.use('ns/b', new Set(['b.lb.test']));
    const settled = hosts.settle();
    await until(() => waiting.length >= 1);
    hosts.use('ns/b', new Set());
    for (const answer of waiting.splice(0)) answer([]);
    await settled;
    expect(changed).toEqual([]);
    hosts.stop();
  });
});

describe('dnsResolver', () => {
  let demo: Awaited<ReturnType<typeof startDemo>>;
  beforeAll(async () => {
    demo = await startDemo();
  });
  afterAll(async () => {
    await demo.stop();
  });

  it('resolves A and AAAA through the given server; a missing name is no addresses; a refusal is a failure', async () => {
    const resolve = dnsResolver([`127.0.0.1:${demo.port}`]);
    expect(await resolve('web.shop.fed.example.com')).toEqual(['192.0.2.20', '198.51.100.20', '2001:db8:a::20', '2001:db8:b::20']);
    expect(await resolve('missing.default.fed.example.com')).toEqual([]);
    await expect(resolve('www.example.org')).rejects.toThrow(/cannot resolve www\.example\.org/);
  });
});
