// How far V8 lets its old generation grow past what the last full collection found live. Left
// to itself, V8 picks the factor from how fast its collector runs against the program, up to a
// ceiling set by its heap limit: 4 once the old generation may reach 2 GiB, 1.3 at 256 MiB and
// below, linearly between (up to 2.0). For fedns the speed nearly always gives the ceiling. A
// federation of 100,000 services holds about 135 MiB live, so where Node.js gives the old
// generation 2 GiB or more (from 4 GiB of memory) its heap could reach 500 MiB before V8 collected.
// `fedns serve` caps the growth at 50 % there: the collector runs more often while the data grows
// (the initial sync and re-lists), and resident memory stays close to what is live
// (benchmarks/scale.ts measures both).
//
// The cap replaces V8's factor outright, so where V8's ceiling is lower the flag would loosen it:
// Node.js sizes the heap from the container's memory limit (a 512 MiB pod: a 256 MiB old
// generation, a heap limit of 259 MiB, a ceiling of 1.3). fedns therefore sets it only when the
// heap limit is at least MIN_HEAP_LIMIT, where the ceiling is above 1.5 even if the young
// generation takes its most (3 × 64 MiB on Node.js 24) of that limit.
//
// Node.js does not take V8 flags in NODE_OPTIONS, so an operator who wants another factor starts
// node with the flag itself (`node --heap-growing-percent=0 cli.js serve` gives V8's own back);
// fedns then leaves it alone.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/** The growth `serve` sets, as a percentage of the live heap. */
export const HEAP_GROWTH_PERCENT = 50;

/** The heap limit from which V8's own growth can exceed HEAP_GROWTH_PERCENT (see above). */
export const MIN_HEAP_LIMIT = 1024 * 1024 * 1024;

const FLAG = /^--heap[-_]growing[-_]percent(?:=|$)/;

export interface HeapGrowth {
  /** "50 %", node's own flag as it was given, or V8's own with the heap limit that keeps it. */
  setting: string;
  source: 'fedns' | 'node flag' | 'V8';
}

/**
 * Sets the heap growth for this process, unless node was started with its own flag (in
 * `execArgv`, process.execArgv by default) or V8's heap limit (`heapLimit`, this process's by
 * default) is below MIN_HEAP_LIMIT; says which one runs.
 */
export function applyHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  heapLimit = getHeapStatistics().heap_size_limit,
  percent = HEAP_GROWTH_PERCENT,
  setFlags = setFlagsFromString,
): HeapGrowth {
  const own = execArgv.find((a) => FLAG.test(a));
  if (own !== undefined) return { setting: own, source: 'node flag' };
  if (heapLimit < MIN_HEAP_LIMIT) return { setting: `V8's own (heap limit ${Math.round(heapLimit / 2 ** 20)} MiB)`, source: 'V8' };
  setFlags(`--heap-growing-percent=${percent}`);
  return { setting: `${percent} %`, source: 'fedns' };
}
