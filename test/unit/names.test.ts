import { describe, expect, it } from 'vitest';
import { parseName } from '../../src/zone/names.js';

const z = { domain: 'example.com.', federation: 'fed' };

describe('parseName: query name -> request', () => {
  const table: [string, ReturnType<typeof parseName>][] = [
    ['example.com.', { kind: 'apex' }],
    ['EXAMPLE.com', { kind: 'apex' }],
    ['example.org.', { kind: 'outside' }],
    ['notexample.com.', { kind: 'outside' }],
    ['nginx.default.fed.example.com.', { kind: 'short', service: 'nginx', namespace: 'default' }],
    ['Nginx.Default.FED.example.com.', { kind: 'short', service: 'nginx', namespace: 'default' }],
    ['nginx.default.fed.svc.example.com.', { kind: 'global', service: 'nginx', namespace: 'default' }],
    ['nginx.default.fed.svc.us-east.example.com.', { kind: 'regional', service: 'nginx', namespace: 'default', region: 'us-east' }],
    [
      'nginx.default.fed.svc.us-east-a.us-east.example.com.',
      { kind: 'zonal', service: 'nginx', namespace: 'default', region: 'us-east', zone: 'us-east-a' },
    ],
    [
      '_http._tcp.nginx.default.fed.example.com.',
      { kind: 'srv', form: 'short', port: 'http', protocol: 'tcp', service: 'nginx', namespace: 'default' },
    ],
    [
      '_http._tcp.nginx.default.fed.svc.example.com.',
      { kind: 'srv', form: 'global', port: 'http', protocol: 'tcp', service: 'nginx', namespace: 'default' },
    ],
    ['db-0.alpha.db.data.fed.svc.example.com.', { kind: 'endpoint', host: 'db-0', cluster: 'alpha', service: 'db', namespace: 'data' }],
    ['default.fed.svc.example.com.', { kind: 'other', labels: ['default', 'fed', 'svc'] }],
    ['fed.example.com.', { kind: 'other', labels: ['fed'] }],
    ['a.b.c.d.e.fed.example.com.', { kind: 'other', labels: ['a', 'b', 'c', 'd', 'e', 'fed'] }],
  ];
  it.each(table)('%s', (name, want) => {
    expect(parseName(z, name)).toEqual(want);
  });
});
