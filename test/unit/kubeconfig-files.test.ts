// The token file a kubeconfig's user names (users[].user.token-file): fedns follows it with the
// kubeconfig itself, since the client library reads it only as it loads the kubeconfig.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadKubeConfig, tokenFileOf } from '../../src/cluster/kube.js';

describe('tokenFileOf', () => {
  const kc = [
    'current-context: a',
    'contexts:',
    '- { name: a, context: { cluster: k, user: ua } }',
    '- { name: b, context: { cluster: k, user: ub } }',
    '- { name: c, context: { cluster: k, user: uc } }',
    'users:',
    '- { name: ua, user: { token-file: /run/a.token } }',
    '- { name: ub, user: { token: plain } }',
    '- { name: uc, user: { token-file: rel/c.token } }',
  ].join('\n');

  it('is the token-file of the user of the context used: the one given, else the current one', () => {
    expect(tokenFileOf(kc)).toBe('/run/a.token');
    expect(tokenFileOf(kc, 'c')).toBe('rel/c.token');
    expect(tokenFileOf(kc, 'b')).toBeUndefined();
    expect(tokenFileOf(kc, 'nowhere')).toBeUndefined();
    const json = { 'current-context': 'j', contexts: [{ name: 'j', context: { user: 'u' } }], users: [{ name: 'u', user: { 'token-file': '/j' } }] };
    expect(tokenFileOf(JSON.stringify(json))).toBe('/j');
    // The key spelled with escapes (no "token-file" in the text) is the same key.
    expect(tokenFileOf(JSON.stringify(json).replace('token-file', 'token\\u002dfile'))).toBe('/j');
    expect(tokenFileOf('current-context: e\ncontexts: [{ name: e, context: { user: u } }]\nusers: [{ name: u, user: { "token\\x2dfile": /e } }]')).toBe('/e');
  });

  it('is none in what is no kubeconfig', () => {
    const broken = [
      '',
      ': : :',
      '[1, 2]',
      'contexts: 3',
      'current-context: a\ncontexts: [null, 7, { name: a }]\nusers: [{ name: ua, user: { token-file: /x } }]',
      'current-context: a\ncontexts: [{ name: a, context: { cluster: k } }]\nusers: [{ user: { token-file: /x } }]',
      'current-context: a\ncontexts: [{ name: a, context: { user: ua } }]\nusers: [null, { name: ua, user: { token-file: 5 } }]',
      'current-context: a\ncontexts: [{ name: a, context: { user: ua } }]\nusers: [{ name: ua, user: { token-file: "" } }]',
    ];
    for (const text of broken) expect(tokenFileOf(text), text).toBeUndefined();
  });
});

describe('a relative token-file', () => {
  it('is read from the kubeconfig file\'s directory, as kubectl reads it, not from the working directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedns-tokenfile-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets', 'c.token'), 'token-beside-the-kubeconfig');
    const file = join(dir, 'c.kubeconfig');
    writeFileSync(
      file,
      [
        'current-context: c',
        'clusters: [{ name: k, cluster: { server: "https://127.0.0.1:6443", certificate-authority: ca.crt } }]',
        'contexts: [{ name: c, context: { cluster: k, user: u } }]',
        'users: [{ name: u, user: { token-file: secrets/c.token } }]',
      ].join('\n'),
    );
    const kc = await loadKubeConfig({ kubeconfig: file });
    expect(kc.getCurrentUser()?.token).toBe('token-beside-the-kubeconfig');
    // The library's own relative paths stay as it makes them: beside the kubeconfig.
    expect(kc.getCurrentCluster()?.caFile).toBe(join(dir, 'ca.crt'));
    expect(tokenFileOf(readFileSync(file, 'utf8'), undefined, dir)).toBe(join(dir, 'secrets', 'c.token'));

    // The same with the key spelled with an escape.
    writeFileSync(file, readFileSync(file, 'utf8').replace('token-file', '"token\\x2dfile"'));
    expect(readFileSync(file, 'utf8')).not.toContain('token-file');
    const escaped = await loadKubeConfig({ kubeconfig: file });
    expect(escaped.getCurrentUser()?.token).toBe('token-beside-the-kubeconfig');
  });
});
