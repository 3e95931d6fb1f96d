// Work on a whole zone or a whole cluster (a list applied, every service rebuilt, the zone
// ordered for a transfer) goes a slice at a time, and every such piece of work shares one
// budget: each turn of the event loop lets one of them run for SLICE_MS, then queries and other
// I/O get their turn. However many run at once (twenty clusters listing together), a query waits
// for one slice, not one per piece of work.
//
//   for (const item of items) {
//     work(item);
//     if (sliceSpent()) await nextSlice();
//   }

/**
 * Time one piece of work may run in a turn of the event loop. A turn runs past it by what the
 * work does between two checks and by any collection in between (up to about 20 ms for a zone of
 * a million records); on a busy machine a turn's wall time is several times its CPU time. At
 * 10 ms, queries on the scale benchmark waited up to 102-141 ms during a reload and `/zone`;
 * at 5 ms, up to 75 ms.
 */
export const SLICE_MS = 5;

const waiting: Array<() => void> = [];
let scheduled = false;
let turnEnds = 0;

function schedule(): void {
  if (scheduled || waiting.length === 0) return;
  scheduled = true;
  setImmediate(turn);
}

function turn(): void {
  scheduled = false;
  turnEnds = performance.now() + SLICE_MS;
  waiting.shift()!();
  schedule();
}

/** Pieces of work waiting for a slice (tests). */
export function waitingSlices(): number {
  return waiting.length;
}

/** Whether the slice of the work running now is spent (it then awaits nextSlice()). */
export function sliceSpent(): boolean {
  return performance.now() >= turnEnds;
}

/** Resolves at a later turn of the event loop with a new slice, after the work waiting before it. */
export function nextSlice(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    schedule();
  });
}

/**
 * Runs `steps` a slice at a time, the event loop running between slices; resolves with what the
 * steps return. A step is what the work does between two `yield`s: the slice is checked every 64
 * steps, so keep each to a few microseconds, or yield `true` after a longer one (it is checked then).
 */
export async function sliced<T>(steps: Generator<boolean | void, T>): Promise<T> {
  let n = 0;
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if ((r.value === true || (++n & 63) === 0) && sliceSpent()) await nextSlice();
  }
}

/** Runs `steps` in one go (a caller that may block: tests, the CLI). */
export function unsliced<T>(steps: Generator<boolean | void, T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}
