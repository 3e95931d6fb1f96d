// Child processes a test run starts are killed when the run ends, however it ends: vitest stops
// its workers with SIGTERM, where no 'exit' handler of the child's own would run.
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const kill = () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    live.clear();
  };
  process.once('exit', kill);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(sig, () => {
      kill();
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

/** Kills `child` if this process ends before it does. */
export function killOnExit(child: ChildProcess): void {
  hookExit();
  live.add(child);
  const forget = () => live.delete(child);
  child.once('error', forget);
  child.once('close', forget);
}

/** SIGTERM, then SIGKILL after `graceMs` if the child is still running; resolves once it exited. */
export async function terminate(child: ChildProcess, exited: Promise<void>, hasExited: () => boolean, graceMs = 5000): Promise<void> {
  if (hasExited()) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => {
    if (!hasExited()) child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(t);
}
