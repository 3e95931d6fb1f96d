// The token file a kubeconfig's user names (users[].user.token-file): fedns follows it with the
// kubeconfig itself, since the client library reads it only as it loads the kubeconfig.
import { describe, expect, it } from 'vitest';
import { tokenFileOf } from '../../src/cluster/kube.js';

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
