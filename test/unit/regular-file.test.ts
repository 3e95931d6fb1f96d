// Files an operator names are read only when regular, and only up to a size: a FIFO (which a read
// waits on for a writer) or /dev/zero (which never ends) would stop fedns.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readRegularFile, UnreadableFile } from '../../src/regular-file.js';

describe('readRegularFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedns-regular-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a regular file', () => {
    writeFileSync(join(dir, 'a'), 'héllo');
    expect(readRegularFile(join(dir, 'a'), 100, 'test file')).toBe('héllo');
  });

  // Called on the FIFO itself: the type is checked on the opened file, so one swapped in after a
  // stat does not block the open or the read.
  it('opens a FIFO without waiting for a writer, and refuses it', () => {
    execFileSync('mkfifo', [join(dir, 'p')]);
    expect(() => readRegularFile(join(dir, 'p'), 100, 'test file')).toThrow(`${join(dir, 'p')}: not a regular file (a FIFO)`);
  });

  it('refuses a device, a missing file and one over the size', () => {
    expect(() => readRegularFile('/dev/zero', 100, 'test file')).toThrow('/dev/zero: not a regular file (a character device)');
    const missing = (() => {
      try {
        readRegularFile(join(dir, 'none'), 100, 'test file');
      } catch (e) {
        return e;
      }
    })();
    expect(missing).toBeInstanceOf(UnreadableFile);
    expect((missing as UnreadableFile).code).toBe('ENOENT');
    writeFileSync(join(dir, 'big'), 'x'.repeat(101));
    expect(() => readRegularFile(join(dir, 'big'), 100, 'test file')).toThrow(`${join(dir, 'big')}: 101 bytes, more than the 100 a test file may have`);
    writeFileSync(join(dir, 'edge'), 'x'.repeat(100));
    expect(readRegularFile(join(dir, 'edge'), 100, 'test file')).toHaveLength(100);
    appendFileSync(join(dir, 'edge'), 'y');
    expect(() => readRegularFile(join(dir, 'edge'), 100, 'test file')).toThrow(/101 bytes, more than the 100/);
  });
});
