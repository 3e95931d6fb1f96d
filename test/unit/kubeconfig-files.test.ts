// The token files a kubeconfig names (users[].user.token-file): fedns follows them with the
// kubeconfig itself, since the client library reads them only as it loads the kubeconfig.
import { describe, expect, it } from 'vitest';
import { tokenFiles } from '../../src/cluster/kube.js';

describe('tokenFiles', () => {
  it('lists each user\'s token-file once, in order', () => {
    const kc = [
      'users:',
      '- { name: a, user: { token-file: /run/a.token } }',
      '- { name: b, user: { token: plain } }',
      '- { name: c, user: { token-file: rel/c.token } }',
      '- { name: d, user: { token-file: /run/a.token } }',
    ].join('\n');
    expect(tokenFiles(kc)).toEqual(['/run/a.token', 'rel/c.token']);
    expect(tokenFiles(JSON.stringify({ users: [{ name: 'j', user: { 'token-file': '/j' } }] }))).toEqual(['/j']);
  });

  it('finds none in what is no kubeconfig, and never more than 16', () => {
    for (const text of ['', ': : :', '[1, 2]', 'users: 3', 'users: [null, 7, { user: null }, { user: { token-file: 5 } }, { user: { token-file: "" } }]'])
      expect(tokenFiles(text), text).toEqual([]);
    const many = `users:\n${Array.from({ length: 40 }, (_, i) => `- { name: u${i}, user: { token-file: /t/${i} } }`).join('\n')}`;
    expect(tokenFiles(many)).toHaveLength(16);
  });
});
