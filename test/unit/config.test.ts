import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { DEMO_CONFIG } from '../support/demo.js';
import { mcsNeedsRestart, notifyOptions } from '../../src/app.js';

// Every file a test writes goes under one folder, removed when the file's tests end.
const scratch = mkdtempSync(join(tmpdir(), 'fedns-cfg-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const tempDir = (): string => mkdtempSync(join(scratch, 'case-'));

function errorsOf(yaml: string): string[] {
  const dir = tempDir();
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, yaml);
  try {
    loadConfig(file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).message.startsWith(`${file}: `)).toBe(true);
    return (e as ConfigError).problems;
  }
  throw new Error('configuration was accepted');
}

describe('configuration', () => {
  it('loads the demo with its defaults filled in', () => {
    const c = loadConfig(DEMO_CONFIG);
    expect(c.domain).toBe('example.com.');
    expect(c.federation).toBe('fed');
    expect(c.listen).toEqual([{ host: '127.0.0.1', port: 1053 }]);
    expect(c.health.gracePeriod).toBe(300);
    expect(c.soa.mname).toBe('ns1.example.com.');
    expect(c.clusters.map((x) => x.name)).toEqual(['alpha', 'bravo', 'charlie']);
    expect(c.clusters[0].source).toMatchObject({ type: 'files', path: expect.stringMatching(/config\/demo\/alpha$/) });
  });

  it('defaults everything for an empty file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'empty.yaml'), '');
    const c = loadConfig(join(dir, 'empty.yaml'));
    expect(c.domain).toBe('example.com.');
    expect(c.nameservers).toEqual([{ name: 'ns1.example.com.', addresses: ['127.0.0.1'] }]);
    expect(c.ttl).toEqual({ default: 30, stale: 5 });
    expect(c.identity).toEqual({ server: hostname(), version: expect.stringMatching(/^fedns \d+\.\d+\.\d+/), nsid: true });
    expect(c.udp).toEqual({ batch: 'auto' });
  });

  it('refuses an empty file, or one of comments only, as a reload (it would drop every cluster), naming the file and the fix', () => {
    const dir = tempDir();
    const file = join(dir, 'f.yaml');
    for (const [text, said] of [
      ['', 'the file is empty'],
      ['\n  \n', 'the file is empty'],
      ['# rewritten\n\n# in place\n', 'the file holds only comments'],
    ]) {
      writeFileSync(file, text);
      expect(() => loadConfig(file, { reload: true })).toThrow(`${file}: ${said}: a reload needs the whole configuration (write the new file beside it, then rename it over this one)`);
      expect(loadConfig(file).clusters).toEqual([]);
    }
    writeFileSync(file, 'ttl: { default: 40 }\n');
    expect(loadConfig(file, { reload: true }).ttl.default).toBe(40);
  });

  const cases: [string, string, RegExp][] = [
    ['unknown field', 'domian: example.com.', /^\(top level\): unknown field "domian"/],
    ['bad domain', 'domain: "exa mple.com"', /^domain: not a valid domain name/],
    ['bad listen', 'listen: ["localhost:53"]', /^listen\[0\]: "localhost" is not an IP address/],
    ['bad port', 'listen: ["127.0.0.1:99999"]', /^listen\[0\]: port 99999 is out of range/],
    ['bad duration', 'health: { gracePeriod: soon }', /^health\.gracePeriod: expected seconds/],
    ['cluster without source, with the shapes a source takes', 'clusters: [{ name: a }]', /^clusters\[0\]\.source: .*\{ type: files, path: DIR \}.*\{ type: kube, kubeconfig: FILE \}/],
    ['a blank source, with the shapes a source takes', 'clusters: [{ name: a, source: }]', /^clusters\[0\]\.source: every cluster needs a source: \{ type: files/],
    ['a source of no known type', 'clusters: [{ name: a, source: { type: git, path: . } }]', /^clusters\[0\]\.source\.type: "git" is not a source type: give files \(with path: DIR\) or kube \(with kubeconfig: FILE, or inCluster: true\)$/],
    ['a source without its type', 'clusters: [{ name: a, source: { path: . } }]', /^clusters\[0\]\.source\.type: missing: give files \(with path: DIR\) or kube/],
    ['a source type that is no string', 'clusters: [{ name: a, source: { type: [files], path: . } }]', /^clusters\[0\]\.source\.type: a list is not a source type: give files/],
    ['a TTL in milliseconds', 'ttl: { default: 500ms }', /^ttl\.default: must be whole seconds/],
    ['a TTL that is no number or duration, with an example', 'ttl: { default: soon }', /^ttl\.default: expected whole seconds, e.g\. 30, or a duration like "30s", "5m"/],
    ['bad cluster name', 'clusters: [{ name: A_B, source: { type: files, path: . } }]', /^clusters\[0\]\.name: must be a lowercase DNS label/],
    ['duplicate cluster', 'clusters: [{ name: a, source: { type: files, path: . } }, { name: a, source: { type: files, path: . } }]', /^clusters\[1\]\.name: duplicate cluster name "a"/],
    ['missing directory', 'clusters: [{ name: a, source: { type: files, path: nowhere } }]', /^clusters\[0\]\.source\.path: directory .*nowhere not found/],
    ['zones without region', 'clusters: [{ name: a, zones: [z1], source: { type: files, path: . } }]', /^clusters\[0\]\.region: a cluster with zones needs a region/],
    ['labels without selector', 'selection: { policy: labels }', /^selection\.labelSelector: policy "labels" needs a labelSelector/],
    ['a set-based label selector', 'selection: { policy: labels, labelSelector: "tier notin (db)" }', /^selection\.labelSelector: cannot parse label selector term "tier notin \(db\)"/],
    ['glue missing', 'nameservers: [{ name: ns.example.com. }]', /^nameservers\[0\]\.addresses: ns\.example\.com\. is inside example\.com\. and needs glue/],
    ['yaml syntax', 'domain: [unclosed', /^YAML syntax: /],
    ['duplicate key, with its place and no dangling colon', 'federation: a\nfederation: b', /^YAML syntax: Map keys must be unique at line 2, column 1$/],
    ['bad ttl', 'ttl: { default: -1 }', /^ttl\.default: /],
    ['TSIG algorithm', 'transfer: { tsig: [{ name: k., algorithm: hmac-md5, secret: ZmVkbnMtdGVzdC1zZWNyZXQtMDEyMw== }] }', /^transfer\.tsig\[0\]\.algorithm: .*hmac-sha1.*hmac-sha512/],
    ['two TSIG keys of one name (the second could never be used)', 'transfer: { tsig: [{ name: k., secret: ZmVkbnMtdGVzdC1zZWNyZXQtMDEyMw== }, { name: K, algorithm: hmac-sha512, secret: ZmVkbnMtdGVzdC1zZWNyZXQtMDEyMw== }] }', /^transfer\.tsig\[1\]\.name: key k\. is already transfer\.tsig\[0\]/],
    ['per-client connection cap', 'tcp: { maxConnectionsPerClient: 0 }', /^tcp\.maxConnectionsPerClient: must be at least 1$/],
    ['a boolean written as yes, saying what to write', 'health: { panicMode: yes }', /^health\.panicMode: expected true or false, got the string "yes"$/],
    ['one address where a list is expected, saying how to write one', 'listen: 127.0.0.1:53', /^listen: expected a list, e\.g\. \[a, b\] or one "- item" per line, got the string "127\.0\.0\.1:53"$/],
    ['a missing TSIG secret', 'transfer: { tsig: [{ name: k. }] }', /^transfer\.tsig\[0\]\.secret: missing: give a string$/],
    ['a negative slip', 'rateLimit: { slip: -1 }', /^rateLimit\.slip: must be at least 0$/],
    // Port 0 aborts Node.js's resolver (an assertion, not an error); spaces it does not trim.
    ['a hostname resolver on port 0', 'hostnames: { resolvers: ["127.0.0.1:0"] }', /^hostnames\.resolvers\[0\]: must be IP or IP:PORT with a port from 1 to 65535/],
    ['a hostname resolver with spaces around it', 'hostnames: { resolvers: [" 127.0.0.1:53"] }', /^hostnames\.resolvers\[0\]: must be IP or IP:PORT .*has spaces around it/],
    ['query ACL', 'queries: { allow: [10.0.0.0/33] }', /^queries\.allow\[0\]: must be an IP address or CIDR block/],
    ['identity not ASCII', 'identity: { server: "dns-ü" }', /^identity\.server: 1 to 255 printable ASCII/],
    ['SOA TTL past 2^31-1 (RFC 2181 8)', 'soa: { ttl: 2147483648 }', /^soa\.ttl: .*2147483647/],
    ['SOA expire past 2^31-1', 'soa: { expire: 4294967296 }', /^soa\.expire: .*2147483647/],
    ['SOA refresh past 2^31-1', 'soa: { refresh: 99999999999 }', /^soa\.refresh: .*2147483647/],
    ['SOA minimum past 2^31-1', 'soa: { minimum: 2147483648 }', /^soa\.minimum: .*2147483647/],
    ['SOA retry negative', 'soa: { retry: -1 }', /^soa\.retry: /],
    ['cname TTL past 86400', 'ttl: { cname: 4294967296 }', /^ttl\.cname: /],
    ['a domain too long for any service name', `domain: "${Array.from({ length: 4 }, () => 'd'.repeat(61)).join('.')}."`, /^domain: .*255 bytes/],
    ['a federation name too long with the domain', `domain: "${Array.from({ length: 3 }, () => 'd'.repeat(61)).join('.')}."\nfederation: "${'f'.repeat(60)}"`, /^federation: .*255 bytes/],
    ['a zone too long with the domain', `domain: "${Array.from({ length: 2 }, () => 'd'.repeat(60)).join('.')}."\nclusters: [{ name: a, region: "${'r'.repeat(60)}", zones: ["${'z'.repeat(60)}"], source: { type: files, path: . } }]`, /^clusters\[0\]\.zones\[0\]: .*255 bytes/],
    ['a region too long with the domain', `domain: "${Array.from({ length: 3 }, () => 'd'.repeat(60)).join('.')}."\nclusters: [{ name: a, region: "${'r'.repeat(60)}", source: { type: files, path: . } }]`, /^clusters\[0\]\.region: .*255 bytes/],
    ['identity too long', `identity: { version: "${'v'.repeat(256)}" }`, /^identity\.version: 1 to 255 printable ASCII/],
    ['udp.batch not a mode', 'udp: { batch: yes }', /^udp\.batch: expected auto, on or off/],
    ['unknown traffic policy', 'policy: closest', /^policy: expected one of all, nearest, failover, weighted/],
    ['address cap of 0', 'maxAddresses: 0', /^maxAddresses: /],
    ['client networks neither auto nor CIDRs', 'clusters: [{ name: a, clientNetworks: everything, source: { type: files, path: . } }]', /^clusters\[0\]\.clientNetworks: expected "auto" or a list of CIDR blocks/],
    ['a client network that is no CIDR', 'clusters: [{ name: a, clientNetworks: [10.0.0.0/40], source: { type: files, path: . } }]', /^clusters\[0\]\.clientNetworks/],
    ['a client zone without a region', 'clients: [{ networks: [192.0.2.0/24], zone: z1 }]', /^clients\[0\]\.region: a client with a zone needs a region/],
    ['a client without networks', 'clients: [{ networks: [], region: r1 }]', /^clients\[0\]\.networks: give at least one CIDR block/],
    ['locality.ecs not a boolean', 'locality: { ecs: maybe }', /^locality\.ecs: /],
    // 0 looked every load-balancer hostname up again in a tight loop, some 1,400 queries a second.
    ['a hostname refresh of 0', 'hostnames: { refresh: 0 }', /^hostnames\.refresh: must be at least 1s \(/],
    ['a hostname refresh under a second', 'hostnames: { refresh: 500ms }', /^hostnames\.refresh: must be at least 1s \(/],
    // A timer set past 2^31-1 ms fires after 1 ms: the cluster expired at once, connections closed at once.
    ['a grace period past what a timer holds', 'health: { gracePeriod: 1000h }', /^health\.gracePeriod: must be at most 2147483\.647 seconds \(about 24\.8 days/],
    ['an idle timeout past what a timer holds', 'tcp: { idleTimeout: 1000h }', /^tcp\.idleTimeout: must be at most 2147483\.647 seconds/],
    ['a ready timeout past what a timer holds', 'ops: { readyTimeout: 2147483.648 }', /^ops\.readyTimeout: must be at most 2147483\.647 seconds/],
    ['a NOTIFY delay past what a timer holds', 'transfer: { notifyDelay: 1000h }', /^transfer\.notifyDelay: must be at most 2147483\.647 seconds/],
    ['a hostname refresh past what a timer holds', 'hostnames: { refresh: 1000h }', /^hostnames\.refresh: must be at most 2147483\.647 seconds/],
    // lru-cache sizes its arrays by the bound: 1e12 threw a RangeError at start, 2e9 took 1.3 GB.
    ['a rate-limit table past a million prefixes', 'rateLimit: { tableSize: 1000000000000 }', /^rateLimit\.tableSize: must be at most 1000000 \(/],
    ['an answer cache past 16 GiB', 'answerCache: { memory: 100000 }', /^answerCache\.memory: must be at most 16384 \(MiB\)/],
    ['an answer cache of no memory', 'answerCache: { memory: 0 }', /^answerCache\.memory: /],
    ['an answer cache of a fraction of a name', 'answerCache: { entries: 1.5 }', /^answerCache\.entries: /],
    ['an answer cache of more names than its tables should be made for', 'answerCache: { entries: 1000001 }', /^answerCache\.entries: must be at most 1000000/],
    // The root would make fedns authoritative for every name, and leaves no room for hostmaster.<domain>.
    ['the root as the domain', 'domain: "."', /^domain: the root "\." cannot be the federation domain: give the zone fedns serves, e\.g\. example\.com\.$/],
    ['a wildcard label in the domain', 'domain: "*.example.com."', /^domain: label "\*" is not a hostname label \(letters, digits, "-", "_"\); give the zone fedns serves, e\.g\. example\.com\.$/],
    ['the root as the clusterset zone', 'mcs: { enabled: true, domain: "." }', /^mcs\.domain: the root "\." cannot be the clusterset zone: give the zone fedns serves, e\.g\. clusterset\.local\.$/],
    ['a wildcard label in the clusterset zone', 'mcs: { enabled: true, domain: "*.local." }', /^mcs\.domain: label "\*" is not a hostname label/],
    ['a clusterset zone around the domain', 'domain: fed.clusterset.local.\nmcs: { enabled: true }', /^mcs\.domain: clusterset\.local\. and domain fed\.clusterset\.local\. must not be the same zone or one inside the other/],
  ];
  it.each(cases)('rejects %s, naming the field', (_what, yaml, want) => {
    const problems = errorsOf(yaml);
    expect(problems.some((p) => want.test(p)), problems.join('\n')).toBe(true);
  });

  // A secret pasted in the wrong shape (dig's -y form where a mapping goes) must not be echoed
  // into check's output or the log; neither is a long value anywhere.
  it('never echoes a value given under transfer.tsig, nor a long one elsewhere', () => {
    const secret = 'X6Ppvt2HY8eUrd20oxDuDNumXrf2Zl1665Mdor9PXJA=';
    const problems = [
      ...errorsOf(`transfer: { tsig: ["hmac-sha256:xfr-key:${secret}"] }`),
      ...errorsOf(`transfer: { tsig: [{ name: k., secret: 12345678901234567890123456789012 }] }`),
      ...errorsOf(`health: { panicMode: "${'y'.repeat(60)}" }`),
    ];
    expect(problems).toContain('transfer.tsig[0]: expected a mapping of fields, e.g. { name: value }, got a string');
    expect(problems).toContain('transfer.tsig[0].secret: expected a string, got a number');
    expect(problems).toContain('health.panicMode: expected true or false, got a string');
    expect(problems.join('\n')).not.toMatch(/X6Pp|1234|yyyy/);
    // Numbers a YAML reader makes of .inf and .nan, and a fraction where a whole number goes.
    expect(errorsOf('rateLimit: { responsesPerSecond: .inf }')).toContain('rateLimit.responsesPerSecond: expected a finite number, got number Infinity');
    expect(errorsOf('rateLimit: { slip: 1.5 }')).toContain('rateLimit.slip: expected a whole number, got number 1.5');
    expect(errorsOf('listen: []')).toContain('listen: give at least 1 item');
  });

  it('reads TSIG algorithm names as BIND and Knot write them: any case, with or without the final dot', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'k.yaml'), 'transfer: { tsig: [{ name: a., algorithm: HMAC-SHA256., secret: ZmVkbnMtdGVzdC1zZWNyZXQtMDEyMw== }, { name: b., algorithm: hmac-sha512., secret: ZmVkbnMtdGVzdC1zZWNyZXQtMDEyMw== }] }\n');
    expect(loadConfig(join(dir, 'k.yaml')).transfer.tsig.map((k) => k.algorithm)).toEqual(['hmac-sha256', 'hmac-sha512']);
  });

  it('reads TTLs and SOA timers written as durations, as every other time field', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'd.yaml'), 'ttl: { default: 30s, stale: 1m }\nsoa: { refresh: 1h, minimum: "45" }\n');
    const c = loadConfig(join(dir, 'd.yaml'));
    expect(c.ttl).toEqual({ default: 30, stale: 60 });
    expect(c.soa.refresh).toBe(3600);
    expect(c.soa.minimum).toBe(45);
    // Whole seconds written with a fraction of a bigger unit: 8.3 minutes are 498 seconds.
    writeFileSync(join(dir, 'f.yaml'), 'ttl: { default: 8.3m, stale: 0.0175h }\n');
    expect(loadConfig(join(dir, 'f.yaml')).ttl).toEqual({ default: 498, stale: 63 });
  });

  it('reports the root as the clusterset zone once, as the root', () => {
    expect(errorsOf('mcs: { enabled: true, domain: "." }')).toEqual(['mcs.domain: the root "." cannot be the clusterset zone: give the zone fedns serves, e.g. clusterset.local.']);
  });

  it('takes "_" labels in the domain', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'u.yaml'), 'domain: _dns.Example.com\n');
    expect(loadConfig(join(dir, 'u.yaml')).domain).toBe('_dns.example.com.');
  });

  it('takes durations up to the longest a timer holds, 2^31-1 ms', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 't.yaml'), 'health: { gracePeriod: 2147483.647 }\ntcp: { idleTimeout: 596h }\n');
    const c = loadConfig(join(dir, 't.yaml'));
    expect([c.health.gracePeriod, c.tcp.idleTimeout]).toEqual([2147483.647, 596 * 3600]);
  });

  // A few lines of anchors that expand a billionfold: the YAML reader refuses them, and that is
  // a problem of the file like any other (it was an uncaught ReferenceError and a stack trace).
  it('rejects a file whose aliases expand without bound ("billion laughs"), naming the file', () => {
    const lol = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const [p, q] of [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e'], ['e', 'f'], ['f', 'g'], ['g', 'h'], ['h', 'i']]) lol.push(`${q}: &${q} [${Array(10).fill(`*${p}`).join(', ')}]`);
    expect(errorsOf(lol.join('\n'))).toEqual([expect.stringMatching(/^YAML: .*alias.*; use fewer aliases \(\*name\) or write the values out$/)]);
  });

  it('refuses a transfer.serialFile that cannot be kept: no such directory, or a directory itself', () => {
    expect(errorsOf('transfer: { serialFile: /nonexistent/dir/serial }')).toEqual([
      'transfer.serialFile: directory /nonexistent/dir not found; create it, or name a file in a directory that exists',
    ]);
    expect(errorsOf(`transfer: { serialFile: ${tmpdir()} }`)).toEqual([`transfer.serialFile: ${tmpdir()} is a directory; name a file`]);
    // A device or a FIFO would be replaced by a regular file on the first save.
    expect(errorsOf('transfer: { serialFile: /dev/null }')).toEqual(['transfer.serialFile: /dev/null is not a regular file (it would be replaced by one); name a file']);
    const dir = tempDir();
    writeFileSync(join(dir, 'plain'), '');
    expect(errorsOf(`transfer: { serialFile: ${join(dir, 'plain', 'serial')} }`)).toEqual([
      `transfer.serialFile: ${join(dir, 'plain')} is not a directory; create it, or name a file in a directory that exists`,
    ]);
    // With mcs, the clusterset zone's serial file beside it is checked too.
    mkdirSync(join(dir, 'serial.mcs'));
    expect(errorsOf(`mcs: { enabled: true }\ntransfer: { serialFile: ${join(dir, 'serial')} }`)).toEqual([`transfer.serialFile: ${join(dir, 'serial.mcs')} is a directory; name a file`]);
  });

  it('reports a missing file by name', () => {
    expect(() => loadConfig('/nonexistent/fedns.yaml')).toThrow(/\/nonexistent\/fedns\.yaml: cannot read the file: no such file \(give its path with --config\)/);
  });

  it('reads only a regular file: a FIFO (which a read would wait on for ever, reloads and queries with it) is refused by name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedns-config-fifo-'));
    try {
      execFileSync('mkfifo', [join(dir, 'fedns.yaml')]);
      expect(() => loadConfig(join(dir, 'fedns.yaml'))).toThrow(/fedns\.yaml: cannot read the file: not a regular file \(a FIFO\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('NOTIFY targets of the clusterset zone', () => {
  // A secondary that carries only the federation zone answers NOTAUTH to the clusterset zone's
  // NOTIFYs, logged and counted as rejected for ever: mcs.notify names the clusterset zone's own.
  const dir = mkdtempSync(join(tmpdir(), 'fedns-mcs-notify-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const config = (yaml: string) => {
    writeFileSync(join(dir, 'c.yaml'), yaml);
    return loadConfig(join(dir, 'c.yaml'));
  };

  it('are transfer.notify unless mcs.notify says otherwise (an empty list: none)', () => {
    const same = config('mcs: { enabled: true }\ntransfer: { notify: [192.0.2.60:53] }\n');
    expect(notifyOptions(same, true).targets).toEqual([{ host: '192.0.2.60', port: 53 }]);
    const own = config('mcs: { enabled: true, notify: [192.0.2.61:5353] }\ntransfer: { notify: [192.0.2.60:53] }\n');
    expect(notifyOptions(own).targets).toEqual([{ host: '192.0.2.60', port: 53 }]);
    expect(notifyOptions(own, true).targets).toEqual([{ host: '192.0.2.61', port: 5353 }]);
    expect(notifyOptions(config('mcs: { enabled: true, notify: [] }\ntransfer: { notify: [192.0.2.60:53] }\n'), true).targets).toEqual([]);
  });

  it('change on reload: mcs.notify is not one of the mcs settings that wait for a restart', () => {
    const a = config('mcs: { enabled: true }\n');
    const b = config('mcs: { enabled: true, notify: [192.0.2.61:53] }\n');
    expect(mcsNeedsRestart(a, b)).toBe(false);
    expect(mcsNeedsRestart(a, config('mcs: { enabled: false }\n'))).toBe(true);
  });
});
