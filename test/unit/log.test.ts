import { afterEach, describe, expect, it, vi } from 'vitest';
import { ThrottledLog } from '../../src/throttled-log.js';
import { captureLogs } from '../transfer/harness.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('ThrottledLog', () => {
  it('logs a few lines per kind and minute, then counts; the count is logged when the minute ends', () => {
    vi.useFakeTimers();
    const c = captureLogs();
    const t = new ThrottledLog(c.log, { lines: 3, periodMs: 60_000 });
    for (let i = 0; i < 10_000; i++) t.warn('transfer-refused', { client: `192.0.2.${i & 255}` }, 'zone transfer refused');
    for (let i = 0; i < 2; i++) t.error('query-failed', { from: '192.0.2.1' }, 'query failed');
    expect(c.find('zone transfer refused')).toHaveLength(3);
    expect(c.find('zone transfer refused')[0]).toMatchObject({ kind: 'transfer-refused', client: '192.0.2.0', level: 40 });
    expect(c.find('query failed')).toHaveLength(2);
    vi.advanceTimersByTime(60_000);
    const summary = c.find('zone transfer refused', (r) => r.suppressed !== undefined);
    expect(summary).toEqual([expect.objectContaining({ kind: 'transfer-refused', suppressed: 9997, level: 40 })]);
    // Nothing was suppressed for query-failed: no summary line for it.
    expect(c.find('query failed', (r) => r.suppressed !== undefined)).toEqual([]);
    // A new minute: lines again.
    t.warn('transfer-refused', { client: '192.0.2.1' }, 'zone transfer refused');
    expect(c.find('zone transfer refused')).toHaveLength(5);
    expect(c.records.length).toBe(3 + 2 + 1 + 1);
  });

  it('the first line of a new minute carries the count when no timer reported it', () => {
    const c = captureLogs();
    let now = 1_000_000;
    const t = new ThrottledLog(c.log, { lines: 2, periodMs: 60_000, now: () => now });
    for (let i = 0; i < 50; i++) t.warn('bad-packet', {}, 'bad packet');
    now += 60_000;
    t.warn('bad-packet', {}, 'bad packet');
    const lines = c.find('bad packet');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatchObject({ kind: 'bad-packet', suppressed: 48 });
    t.flush();
    expect(c.records).toHaveLength(3);
  });

  it('flush() logs what is pending at once, for every kind', () => {
    const c = captureLogs();
    const t = new ThrottledLog(c.log, { lines: 1 });
    for (let i = 0; i < 10; i++) t.warn('a', {}, 'line a');
    for (let i = 0; i < 5; i++) t.error('b', {}, 'line b');
    t.flush();
    expect(c.find('line a', (r) => r.suppressed === 9)).toHaveLength(1);
    expect(c.find('line b', (r) => r.suppressed === 4 && r.level === 50)).toHaveLength(1);
    t.flush();
    expect(c.records).toHaveLength(4);
  });
});
