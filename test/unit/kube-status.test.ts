// How API-server answers become health reasons and retry delays.
import { describe, expect, it } from 'vitest';
import { describeNetworkError, describeStatus, retryAfterMs } from '../../src/cluster/kube-http.js';

describe('Retry-After', () => {
  const now = Date.parse('2026-11-26T12:00:00Z');
  it.each([
    ['1', 1000],
    [' 30 ', 30_000],
    ['0', 0],
    ['Thu, 26 Nov 2026 12:00:05 GMT', 5000],
    ['Thu, 26 Nov 2026 11:59:00 GMT', 0], // a date in the past: no wait
  ])('%j -> %d ms', (value, ms) => {
    expect(retryAfterMs(value, now)).toBe(ms);
  });
  it.each([[undefined], [''], ['soon'], ['-5'], ['1.5']])('%j is not a delay', (value) => {
    expect(retryAfterMs(value, now)).toBeUndefined();
  });
});

describe('HTTP status as a health reason', () => {
  it.each([
    [401, '', 'credentials rejected (401)'],
    [403, '{"kind":"Status","message":"services is forbidden"}', 'access forbidden (403): services is forbidden'],
    [410, '', 'resourceVersion expired (410)'],
    [429, '', 'throttled by the API server (429)'],
    [503, 'overloaded', 'API server error (503): overloaded'],
    [418, '', 'HTTP 418'],
  ])('%d %j', (status, body, text) => {
    const e = describeStatus(status, body);
    expect(e.message).toBe(text);
    expect(e.status).toBe(status);
    expect(e.category).toBe('http');
  });
});

describe('connection errors as health reasons', () => {
  const err = (code: string, message: string) => Object.assign(new Error(message), { code });
  it('a connection dropped during the TLS handshake (a hung or restarting server) is unreachable, not a TLS problem', () => {
    const e = describeNetworkError(err('ECONNRESET', 'Client network socket disconnected before secure TLS connection was established'));
    expect(e.category).toBe('network');
    expect(e.message).toBe('API server unreachable: ECONNRESET');
  });
  it('a certificate that does not verify is TLS', () => {
    const e = describeNetworkError(err('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'));
    expect(e.category).toBe('tls');
    expect(e.message).toBe('TLS: unable to verify the first certificate');
  });
});
