/**
 * The pure ConfigMap text edits behind `fedns join` / `fedns unjoin`: other entries are kept,
 * join is idempotent (the very same string comes back), unjoin after join gives back the
 * original text exactly, bad input fails with a message that says what is wrong.
 */
import { describe, expect, it } from 'vitest';
import { unifiedDiff } from '../../src/join/diff.js';
import {
  EditError,
  addFederation,
  corefileBlock,
  hasCorefileBlock,
  kubeDnsDnsmasqArgs,
  mergeStubDomains,
  removeCorefileBlock,
  removeFederation,
  removeStubDomain,
  stubDomainsEmpty,
  upsertCorefileBlock,
} from '../../src/join/edit.js';
import { FED_COREFILE_BLOCK } from './fixtures.js';

const D = 'example.com.';
const NS = ['192.0.2.53:1053'];

describe('mergeStubDomains / removeStubDomain', () => {
  const cases: Array<{ name: string; input: string | undefined; joined: string }> = [
    { name: 'absent key', input: undefined, joined: '{"example.com": ["192.0.2.53:1053"]}' },
    { name: 'empty string', input: '', joined: '{"example.com": ["192.0.2.53:1053"]}' },
    { name: 'empty object', input: '{}', joined: '{"example.com": ["192.0.2.53:1053"]}' },
    { name: 'empty object with space', input: '{ }', joined: '{"example.com": ["192.0.2.53:1053"] }' },
    {
      name: 'another stub domain (kept)',
      input: '{"acme.local": ["10.0.0.10"]}',
      joined: '{"acme.local": ["10.0.0.10"], "example.com": ["192.0.2.53:1053"]}',
    },
    {
      name: 'compact JSON',
      input: '{"acme.local":["10.0.0.10"],"b.local":["10.0.0.11"]}',
      joined: '{"acme.local":["10.0.0.10"],"b.local":["10.0.0.11"], "example.com": ["192.0.2.53:1053"]}',
    },
    {
      name: 'multi-line JSON (layout followed) with a trailing newline',
      input: '{\n  "acme.local": ["10.0.0.10"],\n  "corp.internal": ["10.1.0.1", "10.1.0.2:5353"]\n}\n',
      joined: '{\n  "acme.local": ["10.0.0.10"],\n  "corp.internal": ["10.1.0.1", "10.1.0.2:5353"],\n  "example.com": ["192.0.2.53:1053"]\n}\n',
    },
    {
      name: 'CRLF multi-line JSON',
      input: '{\r\n  "acme.local": ["10.0.0.10"]\r\n}\r\n',
      joined: '{\r\n  "acme.local": ["10.0.0.10"],\r\n  "example.com": ["192.0.2.53:1053"]\r\n}\r\n',
    },
    {
      name: 'nested escapes and braces inside strings',
      input: '{"we\\"ird}": ["10.0.0.1"]}',
      joined: '{"we\\"ird}": ["10.0.0.1"], "example.com": ["192.0.2.53:1053"]}',
    },
  ];
  it.each(cases)('join: $name', ({ input, joined }) => {
    const out = mergeStubDomains(input, D, NS);
    expect(out).toBe(joined);
    expect(JSON.parse(out)['example.com']).toEqual(NS);
    // every other entry kept with its value
    const before = input && input.trim() ? (JSON.parse(input) as Record<string, string[]>) : {};
    for (const [k, v] of Object.entries(before)) expect(JSON.parse(out)[k]).toEqual(v);
  });
  it.each(cases)('join twice is a no-op: $name', ({ input }) => {
    const once = mergeStubDomains(input, D, NS);
    expect(mergeStubDomains(once, D, NS)).toBe(once);
  });
  it.each(cases.filter((c) => c.input !== undefined && c.input !== ''))('unjoin after join restores the text exactly: $name', ({ input }) => {
    expect(removeStubDomain(mergeStubDomains(input, D, NS), D)).toBe(input);
  });

  it('replaces only our domain\'s value when the name server changed, in place', () => {
    const joined = '{"example.com": ["192.0.2.1"], "acme.local": ["10.0.0.10"]}';
    expect(mergeStubDomains(joined, 'EXAMPLE.com', ['192.0.2.53:1053', '192.0.2.54:1053'])).toBe(
      '{"example.com": ["192.0.2.53:1053", "192.0.2.54:1053"], "acme.local": ["10.0.0.10"]}',
    );
  });
  it('removes our entry wherever it is (first, middle, last, only)', () => {
    expect(removeStubDomain('{"example.com": ["x"], "a.local": ["1.1.1.1"]}', D)).toBe('{"a.local": ["1.1.1.1"]}');
    expect(removeStubDomain('{"a": ["1"], "example.com": ["x"], "b": ["2"]}', D)).toBe('{"a": ["1"], "b": ["2"]}');
    expect(removeStubDomain('{"a": ["1"], "example.com": ["x"]}', D)).toBe('{"a": ["1"]}');
    expect(removeStubDomain('{"example.com": ["x"]}', D)).toBe('{}');
    expect(stubDomainsEmpty('{}')).toBe(true);
    expect(stubDomainsEmpty('{"a": []}')).toBe(false);
  });
  it('unjoin is idempotent and leaves other domains alone', () => {
    const other = '{"acme.local": ["10.0.0.10"]}';
    expect(removeStubDomain(other, D)).toBe(other);
    expect(removeStubDomain(undefined, D)).toBeUndefined();
    expect(removeStubDomain(removeStubDomain(mergeStubDomains(other, D, NS), D), D)).toBe(other);
  });
  it.each([
    ['not JSON', '{acme.local: [10.0.0.10]}', /stubDomains is not valid JSON/],
    ['an array', '["10.0.0.10"]', /must be a JSON object.*not an array/],
    ['a string value', '{"acme.local": "10.0.0.10"}', /stubDomains\["acme.local"\] must be a list/],
    ['a number in the list', '{"acme.local": [10]}', /stubDomains\["acme.local"\] must be a list/],
  ])('malformed stubDomains (%s) is a clear error', (_, input, msg) => {
    expect(() => mergeStubDomains(input, D, NS)).toThrow(EditError);
    expect(() => mergeStubDomains(input, D, NS)).toThrow(msg);
    expect(() => removeStubDomain(input, D)).toThrow(msg);
  });
});

describe('addFederation / removeFederation', () => {
  const cases: Array<{ input: string | undefined; joined: string }> = [
    { input: undefined, joined: 'fed=example.com' },
    { input: '', joined: 'fed=example.com' },
    { input: 'other=example.org', joined: 'other=example.org,fed=example.com' },
    { input: 'a=a.org, b=b.org', joined: 'a=a.org, b=b.org,fed=example.com' },
    { input: 'other=example.org\n', joined: 'other=example.org,fed=example.com\n' },
    { input: 'fed=example.com', joined: 'fed=example.com' },
    { input: 'x=y.org,fed=example.com,z=w.org', joined: 'x=y.org,fed=example.com,z=w.org' },
  ];
  it.each(cases)('join $input', ({ input, joined }) => {
    expect(addFederation(input, 'fed', D)).toBe(joined);
    expect(addFederation(joined, 'fed', D)).toBe(joined); // no duplicates, idempotent
  });
  it.each(cases.filter((c) => c.input !== undefined && !c.input.includes('fed=')))('unjoin after join restores $input', ({ input }) => {
    expect(removeFederation(addFederation(input, 'fed', D), 'fed', D)).toBe(input);
  });
  it('repoints our federation name to the new domain in place', () => {
    expect(addFederation('a=a.org,fed=old.example,b=b.org', 'fed', D)).toBe('a=a.org,fed=example.com,b=b.org');
  });
  it('removes only name=domain; another domain under our name is not ours', () => {
    expect(removeFederation('fed=example.com,a=a.org', 'fed', D)).toBe('a=a.org');
    expect(removeFederation('a=a.org, fed=example.com , b=b.org', 'fed', D)).toBe('a=a.org, b=b.org');
    expect(removeFederation('fed=elsewhere.org', 'fed', D)).toBe('fed=elsewhere.org');
    expect(removeFederation('fed=example.com', 'fed', D)).toBe('');
    expect(removeFederation(undefined, 'fed', D)).toBeUndefined();
  });
  it('a malformed list is a clear error', () => {
    expect(() => addFederation('a=a.org,oops', 'fed', D)).toThrow(/"oops" is not NAME=DOMAIN/);
    expect(() => addFederation('a=a.org,', 'fed', D)).toThrow(/"" is not NAME=DOMAIN/);
  });
});

const COREFILE = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`;

const BLOCK = FED_COREFILE_BLOCK;

describe('upsertCorefileBlock / removeCorefileBlock', () => {
  it('appends the marked block and leaves the rest untouched', () => {
    const out = upsertCorefileBlock(COREFILE, 'fed', D, '192.0.2.53:1053');
    expect(out).toBe(COREFILE + BLOCK + '\n');
    expect(hasCorefileBlock(out, 'fed')).toBe(true);
  });
  const variants: Array<[string, string]> = [
    ['trailing newline', COREFILE],
    ['no trailing newline', COREFILE.trimEnd()],
    ['CRLF', COREFILE.replace(/\n/g, '\r\n')],
    ['CRLF without final line ending', COREFILE.replace(/\n/g, '\r\n').trimEnd()],
    ['empty', ''],
    ['another federation block already there', COREFILE + BLOCK.replace(/fed\b/g, 'other').replace('example.com', 'example.org') + '\n'],
  ];
  it.each(variants)('%s: idempotent, line endings kept, unjoin restores exactly', (_, text) => {
    const once = upsertCorefileBlock(text, 'fed', D, ['192.0.2.53:1053']);
    expect(upsertCorefileBlock(once, 'fed', D, ['192.0.2.53:1053'])).toBe(once);
    expect(once.startsWith(text)).toBe(true);
    if (text.includes('\r\n')) expect(once.replace(/\r\n/g, '')).not.toContain('\n');
    expect(once.endsWith('\n')).toBe(text === '' || text.endsWith('\n'));
    expect(removeCorefileBlock(once, 'fed')).toBe(text);
    expect(removeCorefileBlock(removeCorefileBlock(once, 'fed'), 'fed')).toBe(text);
  });
  it('replaces an existing block in place (new address), nothing else moves', () => {
    const middle = `${BLOCK}\n${COREFILE}# after\n`;
    const out = upsertCorefileBlock(middle, 'fed', D, '198.51.100.53');
    expect(out).toBe(`${BLOCK.replace('192.0.2.53:1053', '198.51.100.53')}\n${COREFILE}# after\n`);
    expect(removeCorefileBlock(out, 'fed')).toBe(`${COREFILE}# after\n`);
  });
  it('serves on the root block\'s port', () => {
    const out = upsertCorefileBlock(COREFILE.replace('.:53 {', '.:5353 {'), 'fed', D, '192.0.2.53');
    expect(out).toContain('example.com:5353 {');
    expect(out).toContain('    forward . 192.0.2.53\n');
  });
  it('refuses to add a second block for a zone someone else already serves', () => {
    const clash = `${COREFILE}example.com {\n    forward . 10.0.0.1\n}\n`;
    expect(() => upsertCorefileBlock(clash, 'fed', D, '192.0.2.53')).toThrow(/line 21 already has a server block for example\.com:53 that fedns did not write/);
    // ...but not for another port or a sub-zone
    expect(() => upsertCorefileBlock(`${COREFILE}example.com:5300 {\n}\nsub.example.com {\n}\n`, 'fed', D, '192.0.2.53')).not.toThrow();
  });
  it('a half-removed block (begin without end) is a clear error', () => {
    const broken = `${COREFILE}# fedns:begin fed\nexample.com:53 {\n}\n`;
    expect(() => upsertCorefileBlock(broken, 'fed', D, '192.0.2.53')).toThrow(/"# fedns:begin fed" without a matching "# fedns:end fed"/);
    expect(() => removeCorefileBlock(broken, 'fed')).toThrow(EditError);
  });
  it('removing when there is no block returns the same text', () => {
    expect(removeCorefileBlock(COREFILE, 'fed')).toBe(COREFILE);
  });
  it('IPv6 and several servers', () => {
    expect(corefileBlock('fed', D, ['[2001:db8::53]:1053', '192.0.2.53'])).toContain('forward . [2001:db8::53]:1053 192.0.2.53');
  });
});

describe('kubeDnsDnsmasqArgs (what dnsmasq-nanny derives)', () => {
  it('one --server per stub domain server, port separator #, then upstreams', () => {
    expect(
      kubeDnsDnsmasqArgs({
        stubDomains: '{"acme.local": ["10.0.0.10"], "example.com": ["127.0.0.1:5353", "[::1]:5353", "::1"]}',
        upstreamNameservers: '["8.8.8.8", "1.1.1.1:5353"]',
      }),
    ).toEqual([
      '--server=/acme.local/10.0.0.10',
      '--server=/example.com/127.0.0.1#5353',
      '--server=/example.com/[::1]#5353',
      '--server=/example.com/::1',
      '--server=8.8.8.8',
      '--server=1.1.1.1#5353',
      '--no-resolv',
    ]);
    expect(kubeDnsDnsmasqArgs({})).toEqual([]);
  });
});

describe('unifiedDiff', () => {
  it('shows changed lines with context, and absent values', () => {
    const d = unifiedDiff('a\nb\nc\n', 'a\nB\nc\nd\n', 'x');
    expect(d).toBe(['--- x (before)', '+++ x (after)', '@@ -1,3 +1,4 @@', ' a', '-b', '+B', ' c', '+d', ''].join('\n'));
    expect(unifiedDiff(undefined, 'new\n', 'k')).toBe(['--- (absent)', '+++ k (after)', '@@ -0,0 +1,1 @@', '+new', ''].join('\n'));
    expect(unifiedDiff('same', 'same', 'k')).toBe('');
    expect(unifiedDiff('gone\n', undefined, 'k')).toBe(['--- k (before)', '+++ (absent)', '@@ -1,1 +0,0 @@', '-gone', ''].join('\n'));
    // a label with quotes (an annotation key) is printed as it is
    expect(unifiedDiff(undefined, 'v\n', 'cm metadata.annotations["a/b"]')).toBe(['--- (absent)', '+++ cm metadata.annotations["a/b"] (after)', '@@ -0,0 +1,1 @@', '+v', ''].join('\n'));
  });

  it('marks a missing final line ending, as diff(1) and patch(1) do: only the ending may differ', () => {
    expect(unifiedDiff('{"a": 1}', '{"a": 1, "b": 2}', 'k')).toBe(
      ['--- k (before)', '+++ k (after)', '@@ -1,1 +1,1 @@', '-{"a": 1}', '\\ No newline at end of file', '+{"a": 1, "b": 2}', '\\ No newline at end of file', ''].join('\n'),
    );
    expect(unifiedDiff('x', 'x\n', 'k')).toBe(['--- k (before)', '+++ k (after)', '@@ -1,1 +1,1 @@', '-x', '\\ No newline at end of file', '+x', ''].join('\n'));
  });

  it('keeps hunks apart when the changes are more than twice the context apart', () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i + 1}`).join('\n') + '\n';
    const b = a.replace('l2\n', 'L2\n').replace('l18\n', 'L18\n');
    const d = unifiedDiff(a, b, 'x', 2);
    expect(d.match(/^@@ .* @@$/gm)).toEqual(['@@ -1,4 +1,4 @@', '@@ -16,5 +16,5 @@']);
    expect(d).toContain('\n-l2\n+L2\n');
    expect(d).toContain('\n-l18\n+L18\n');
  });
});
