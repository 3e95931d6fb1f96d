// How far V8 lets its old generation grow past what the last full collection found live. Left
// to itself, V8 picks the factor from how fast its collector runs against the program, and for
// fedns that is nearly always its maximum: 4 (up to 4.8 on Node.js 24). A federation of 100,000
// services holds about 135 MiB live, so its heap could reach 500 MiB before V8 collected, and the
// pod's memory limit has to allow for that. `fedns serve` caps the growth at 50 % instead: the
// collector runs more often while the data grows (the initial sync and re-lists), and resident
// memory stays close to what is live (benchmarks/scale.ts measures both).
//
// Node.js does not take V8 flags in NODE_OPTIONS, so an operator who wants another factor starts
// node with the flag itself (`node --heap-growing-percent=0 cli.js serve` gives V8's own back);
// fedns then leaves it alone.
import { setFlagsFromString } from 'node:v8';

/** The growth `serve` sets, as a percentage of the live heap. */
export const HEAP_GROWTH_PERCENT = 50;

const FLAG = /^--heap[-_]growing[-_]percent(?:=|$)/;

export interface HeapGrowth {
  /** "50 %", or node's own flag as it was given. */
  setting: string;
  source: 'fedns' | 'node flag';
}

/**
 * Sets the heap growth for this process, unless node was started with its own flag (in
 * `execArgv`, process.execArgv by default); says which one runs.
 */
export function applyHeapGrowth(execArgv: readonly string[] = process.execArgv, percent = HEAP_GROWTH_PERCENT, setFlags = setFlagsFromString): HeapGrowth {
  const own = execArgv.find((a) => FLAG.test(a));
  if (own !== undefined) return { setting: own, source: 'node flag' };
  setFlags(`--heap-growing-percent=${percent}`);
  return { setting: `${percent} %`, source: 'fedns' };
}
