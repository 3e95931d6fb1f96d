// Files fedns rewrites (its configuration on join, the saved SOA serial) are replaced whole:
// a crash leaves the old content or the new one, never half of either. write-file-atomic does
// it: a temp file beside the target (a symlink is followed, so the file it points to is
// replaced), written, fsync'ed, given the old file's mode and owner, then renamed over it; the
// temp file is removed on failure and at process exit.
import writeFileAtomicLib from 'write-file-atomic';

/** Replaces `file` with `text` atomically (temp file + fsync + rename), keeping its mode. */
export function writeFileAtomic(file: string, text: string): void {
  writeFileAtomicLib.sync(file, text, { fsync: true });
}
