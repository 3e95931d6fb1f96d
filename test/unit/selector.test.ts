// Label selectors match a Service's own labels only: keys that every JavaScript object answers
// (toString, constructor, __proto__) are labels like any other, absent unless the Service has them.
import { describe, expect, it } from 'vitest';
import { parseLabelSelector } from '../../src/federation/selector.js';

describe('a label selector', () => {
  it('matches each form on the labels given', () => {
    const labels = { fed: 'yes', tier: 'web' };
    expect(parseLabelSelector('fed=yes').matches(labels)).toBe(true);
    expect(parseLabelSelector('fed==no').matches(labels)).toBe(false);
    expect(parseLabelSelector('tier!=db,fed').matches(labels)).toBe(true);
    expect(parseLabelSelector('!tier').matches(labels)).toBe(false);
    expect(parseLabelSelector('!other').matches(labels)).toBe(true);
  });

  it('finds no label an object does not have, whatever its name', () => {
    const none = { fed: 'yes' };
    for (const key of ['toString', 'constructor', 'valueOf', 'hasOwnProperty', '__proto__']) {
      expect(parseLabelSelector(key).matches(none), key).toBe(false);
      expect(parseLabelSelector(`!${key}`).matches(none), key).toBe(true);
      expect(parseLabelSelector(`${key}!=x`).matches(none), key).toBe(true);
      // Its own label of that name is found.
      const own = JSON.parse(`{"${key}": "x"}`) as Record<string, string>;
      expect(parseLabelSelector(`${key}=x`).matches(own), key).toBe(true);
      expect(parseLabelSelector(key).matches(own), key).toBe(true);
    }
  });
});
