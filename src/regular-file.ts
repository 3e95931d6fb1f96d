// Reading a file an operator names (a kubeconfig, a cluster's manifests) without letting what is
// there hang or exhaust fedns: a read blocks on a FIFO until someone writes to it, and never ends
// on /dev/zero. Only regular files are read (symlinks are followed, as Kubernetes mounts
// ConfigMaps and Secrets through them), and only up to a size.
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';

/** Why a file is not read. The message is "PATH: PROBLEM (KIND)". */
export class UnreadableFile extends Error {
  constructor(
    readonly path: string,
    /** "cannot read it (ENOENT)", "not a regular file", "N bytes, more than the M a kubeconfig may have". */
    readonly problem: string,
    /** The errno code when the file could not be stat'ed, opened or read. */
    readonly code?: string,
    /** For a file that is not a regular one: what it is ("a FIFO"). */
    readonly kind?: string,
  ) {
    super(`${path}: ${problem}${kind ? ` (${kind})` : ''}`);
  }

  /** The problem, with what the file is when that is the problem. */
  get detail(): string {
    return this.kind ? `${this.problem} (${this.kind})` : this.problem;
  }
}

/** What kind of file `st` is, for a message. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

function fileTypeOrSize(path: string, st: Stats, max: number, what: string): void {
  if (!st.isFile()) throw new UnreadableFile(path, 'not a regular file', undefined, kindOf(st));
  if (st.size > max) throw new UnreadableFile(path, `${st.size} bytes, more than the ${max} a ${what} may have`);
}

function cannotRead(path: string, e: unknown): UnreadableFile {
  const code = (e as NodeJS.ErrnoException).code;
  return new UnreadableFile(path, `cannot read it (${code ?? (e as Error).message})`, code ?? 'EIO');
}

/**
 * Stats `path` (following symlinks; stat does not block on a FIFO, as a read would) and throws
 * UnreadableFile unless it is a regular file of at most `max` bytes. For a file another library
 * reads: the file may still change before it does; readRegularFile has no such gap.
 */
export function checkRegularFile(path: string, max: number, what: string): Stats {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw cannotRead(path, e);
  }
  fileTypeOrSize(path, st, max, what);
  return st;
}

/**
 * The text (UTF-8) of `path`, a regular file of at most `max` bytes; throws UnreadableFile
 * otherwise. The type and size are checked on the opened file, so a file swapped for a FIFO after
 * a stat is still refused (opening a FIFO without O_NONBLOCK would itself wait for a writer), and
 * no more than `max` bytes are read of a file that grows meanwhile.
 */
export function readRegularFile(path: string, max: number, what: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0));
  } catch (e) {
    throw cannotRead(path, e);
  }
  try {
    let st: Stats;
    try {
      st = fstatSync(fd);
    } catch (e) {
      throw cannotRead(path, e);
    }
    fileTypeOrSize(path, st, max, what);
    // One byte beyond the cap tells a file that grew past it since the fstat.
    const buf = Buffer.allocUnsafe(Math.min(st.size, max) + 1);
    let n = 0;
    try {
      for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
    } catch (e) {
      throw cannotRead(path, e);
    }
    if (n > max) throw new UnreadableFile(path, `more than the ${max} bytes a ${what} may have`);
    // Grew since the fstat, within the cap: read on to the cap.
    if (n === buf.length) return readRest(fd, path, buf, max, what);
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

/** The rest of a file that grew after its fstat, up to `max` bytes in all. */
function readRest(fd: number, path: string, head: Buffer, max: number, what: string): string {
  const buf = Buffer.allocUnsafe(max + 1);
  head.copy(buf);
  let n = head.length;
  try {
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
  } catch (e) {
    throw cannotRead(path, e);
  }
  if (n > max) throw new UnreadableFile(path, `more than the ${max} bytes a ${what} may have`);
  return buf.toString('utf8', 0, n);
}
