/**
 * Traffic policies behind a resolver that sends EDNS Client Subnet (RFC 7871): unbound with its
 * subnetcache module in front of fedns (locality.ecs on). Clients asking through the one unbound
 * from different loopback addresses get their own answers, again and again, and unbound's cache
 * keeps each answer for exactly the scope fedns returned: a /32-scoped answer serves no other
 * client, a /24-scoped one serves the whole /24, a scope-0 one serves everyone. Then fedns
 * directly: the ECS option echoed (family, source, address, scope), ECS off, malformed options.
 *
 * Clients (the demo's cluster networks plus two `clients` entries):
 *   127.0.0.2/32 cluster alpha (us-east-a)    127.0.0.3/32 cluster bravo (us-east-b)
 *   127.0.1.0/24 region us-east, zone us-east-a -> alpha's address
 *   127.0.0.0/16 region us-east, zone us-east-b -> bravo's (the other networks nest inside it)
 *   127.1.0.0/16 and the rest: in no network -> every address (the `all` view)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig, summarise, type DigResult } from '../support/dig.js';
import { startFedns, withYaml, type FednsProcess } from '../support/fedns.js';
import { requirePeers, startUnbound, type PeerHandle } from '../support/peers.js';

const ready = requirePeers('unbound', 'dig');

/** nginx.default has `fedns.io/policy: nearest`; web.shop has no annotation (policy all). */
const NGINX = 'nginx.default.fed.example.com';
const WEB = 'web.shop.fed.example.com';
const ALPHA = ['192.0.2.10'];
const BRAVO = ['198.51.100.10'];
const EVERY = [...ALPHA, ...BRAVO].sort();
const WEB_ALL = ['192.0.2.20', '198.51.100.20'];

const CLIENTS = `locality: { ecs: true }
log: { queries: true }
clients:
  - { networks: [127.0.1.0/24], region: us-east, zone: us-east-a }
  - { networks: [127.0.0.0/16], region: us-east, zone: us-east-b }
`;

function ask(port: number, name: string, ...opts: string[]): Promise<DigResult> {
  return dig(['@127.0.0.1', '-p', String(port), '+time=5', ...opts, name, 'A']);
}

const addresses = (r: DigResult) =>
  r.answer
    .filter((x) => x.type === 'A')
    .map((x) => x.data)
    .sort();

/** The CLIENT-SUBNET line of a response ("127.0.0.2/32/32": address/source/scope), if any. */
const echoed = (r: DigResult) => r.ednsOptions.find((o) => o.startsWith('CLIENT-SUBNET:'))?.slice('CLIENT-SUBNET:'.length).trim();

describe.skipIf(!ready)('EDNS Client Subnet: unbound (subnetcache) in front of fedns', () => {
  let f: FednsProcess;
  let unbound: PeerHandle;
  let marks = 0;

  beforeAll(async () => {
    f = await startFedns({ edit: withYaml(CLIENTS) });
    // unbound sends whole IPv4 addresses (its default is 24 bits, which would hide a /32 client).
    unbound = await startUnbound({ upstreamPort: f.port, domain: 'example.com', clientSubnet: { ipv4Bits: 32 } });
  });
  afterAll(async () => {
    await Promise.all([unbound?.stop(), f?.stop()]);
  });

  /**
   * Queries for `name` A that reached fedns so far. A direct query for a fresh name goes first,
   * and the count is taken once it shows in the query log: unbound answers a client only after
   * fedns answered it, so every upstream query of an answered client is logged before the mark.
   */
  async function upstream(name: string): Promise<number> {
    const mark = `mark-${++marks}.default.fed.example.com.`;
    const r = await ask(f.port, mark, '+norec');
    expect(r.status).toBe('NXDOMAIN');
    await f.waitForLog((l) => l.msg === 'query' && String(l.qname).toLowerCase() === mark, 10_000, `the query log line of ${mark}`);
    return f.logs().filter((l) => l.msg === 'query' && String(l.qname).toLowerCase() === `${name}.` && l.qtype === 'A').length;
  }

  it('each client gets its own answer, repeatedly, cached by unbound for the scope fedns returned', async () => {
    const clients: [string, string[]][] = [
      ['127.0.0.2', ALPHA], // cluster alpha, scope /32
      ['127.0.0.3', BRAVO], // cluster bravo, scope /32
      ['127.0.0.5', BRAVO], // 127.0.0.0/16, which has networks inside it: scope /32, not /16
      ['127.1.0.1', EVERY], // in no network: the all view, scope /32 (networks lie inside 127/8)
      ['127.0.1.7', ALPHA], // 127.0.1.0/24: scope /24 ...
      ['127.0.1.8', ALPHA], // ... so unbound answers this one from its cache
    ];
    for (let round = 1; round <= 3; round++) {
      for (const [from, want] of clients) {
        const r = await ask(unbound.port, NGINX, '-b', from);
        expect(r.status, `round ${round}, from ${from}: ${summarise(r)}`).toBe('NOERROR');
        expect(r.flags.has('ra')).toBe(true); // from unbound, not fedns
        expect(addresses(r), `round ${round}, from ${from}`).toEqual(want);
      }
      // One upstream query per /32 client and one for the /24, all in the first round.
      expect(await upstream(NGINX), `after round ${round}\n--- unbound ---\n${unbound.output()}`).toBe(5);
    }
  });

  it('an answer the same for every client (scope 0) is asked once and shared', async () => {
    for (const from of ['127.0.0.2', '127.0.0.3', '127.1.0.1', '127.0.0.2']) {
      const r = await ask(unbound.port, WEB, '-b', from);
      expect(r.status, summarise(r)).toBe('NOERROR');
      expect(addresses(r), from).toEqual(WEB_ALL);
    }
    expect(await upstream(WEB)).toBe(1);
  });

  it('echoes the option: family, source prefix and address as asked, with the scope the answer holds for', async () => {
    // [source address, ECS option, name, echoed address/source/scope, addresses]
    const cases: [string, string, string, string, string[]][] = [
      ['127.0.0.3', '127.0.0.2/32', NGINX, '127.0.0.2/32/32', ALPHA], // the option decides, not the source address
      ['127.0.0.2', '127.0.0.3/32', NGINX, '127.0.0.3/32/32', BRAVO],
      ['127.0.0.1', '127.0.1.0/24', NGINX, '127.0.1.0/24/24', ALPHA],
      ['127.0.0.1', '127.0.1.9/32', NGINX, '127.0.1.9/32/24', ALPHA], // the network's prefix: holds for its /24
      ['127.0.0.1', '127.0.2.0/24', NGINX, '127.0.2.0/24/24', BRAVO], // in the /16, which has networks inside: the source's prefix
      ['127.0.0.1', '127.0.0.0/24', NGINX, '127.0.0.0/24/24', BRAVO],
      ['127.0.0.1', '10.0.0.0/8', NGINX, '10.0.0.0/8/8', EVERY], // in no network
      ['127.0.0.1', '2001:db8::/48', NGINX, '2001:db8::/48/48', EVERY],
      ['127.0.0.2', '0.0.0.0/0', NGINX, '0.0.0.0/0/0', EVERY], // source 0: the client's address withheld, the resolver's does not count
      ['127.0.0.2', '127.0.0.2/32', WEB, '127.0.0.2/32/0', WEB_ALL], // policy all: the same for everyone
      ['127.0.0.2', '2001:db8:1::/56', WEB, '2001:db8:1::/56/0', WEB_ALL],
    ];
    for (const [from, subnet, name, echo, want] of cases) {
      const r = await ask(f.port, name, '+norec', '-b', from, `+subnet=${subnet}`);
      expect(r.status, `${subnet}: ${summarise(r)}`).toBe('NOERROR');
      expect(echoed(r), `${subnet} ${name}`).toBe(echo);
      expect(addresses(r), `${subnet} ${name}`).toEqual(want);
    }
    // Without the option: nothing echoed, and the source address decides.
    const plain = await ask(f.port, NGINX, '+norec', '-b', '127.0.0.2');
    expect(echoed(plain)).toBeUndefined();
    expect(addresses(plain)).toEqual(ALPHA);
  });

  it('a malformed option is FORMERR', async () => {
    await expectFormErr(f.port);
  });
});

/** ECS options (hex) that break RFC 7871 6, each answered FORMERR. */
const MALFORMED: [string, string][] = [
  ['0001', 'shorter than family, source and scope'],
  ['00012100', 'IPv4 source prefix 33'],
  ['00028100', 'IPv6 source prefix 129'],
  ['00031800c00002', 'unknown family 3'],
  ['0001180c7f0001', 'scope set in a query'],
  ['00011800', 'address shorter than the source prefix'],
  ['000118007f000100', 'address longer than the source prefix'],
  ['000117007f0001', 'address bits set past the source prefix'],
];

async function expectFormErr(port: number): Promise<void> {
  for (const [hex, why] of MALFORMED) {
    const r = await ask(port, NGINX, '+norec', '-b', '127.0.0.2', `+ednsopt=8:${hex}`);
    expect(r.status, `${why} (${hex}): ${summarise(r)}`).toBe('FORMERR');
    expect(r.answer, why).toEqual([]);
    expect(echoed(r), why).toBeUndefined();
  }
}

describe.skipIf(!ready)('EDNS Client Subnet off (locality.ecs: false)', () => {
  let f: FednsProcess;
  beforeAll(async () => {
    f = await startFedns({ edit: withYaml(CLIENTS.replace('ecs: true', 'ecs: false')) });
  });
  afterAll(async () => {
    await f?.stop();
  });

  it('nothing is echoed and the source address decides, whatever the option says', async () => {
    const cases: [string, string, string[]][] = [
      ['127.0.0.2', '127.0.0.3/32', ALPHA],
      ['127.0.0.3', '127.0.0.2/32', BRAVO],
      ['127.1.0.1', '127.0.0.2/32', EVERY],
      ['127.0.1.7', '10.0.0.0/8', ALPHA],
    ];
    for (const [from, subnet, want] of cases) {
      const r = await ask(f.port, NGINX, '+norec', '-b', from, `+subnet=${subnet}`);
      expect(r.status, summarise(r)).toBe('NOERROR');
      expect(r.edns, 'OPT still answered').toBeDefined();
      expect(echoed(r), `${from} ${subnet}`).toBeUndefined();
      expect(addresses(r), `${from} ${subnet}`).toEqual(want);
    }
  });

  it('a malformed option is still FORMERR (the option is read before it is ignored)', async () => {
    await expectFormErr(f.port);
  });
});
