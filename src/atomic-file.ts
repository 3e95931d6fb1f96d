// Files fedns rewrites (its configuration on join, the saved SOA serial) are replaced whole:
// a crash leaves the old content or the new one, never half of either.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Replaces `file` with `text` atomically (temp file + fsync + rename), keeping its mode. */
export function writeFileAtomic(file: string, text: string): void {
  let target = file;
  try {
    target = realpathSync(file); // a symlinked config: replace the file it points to, not the link
  } catch {
    /* new file */
  }
  let mode = 0o644;
  try {
    mode = statSync(target).mode & 0o7777;
  } catch {
    /* new file */
  }
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
