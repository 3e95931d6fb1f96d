// The JavaScript heap as memory tests measure it.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** The engine's collector, made callable for tests. */
export function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** The heap in use once the current job has ended (WeakRefs let go) and a full collection ran. */
export async function settledHeap(): Promise<number> {
  const gc = collector();
  await new Promise((r) => setTimeout(r, 0));
  gc();
  return process.memoryUsage().heapUsed;
}
