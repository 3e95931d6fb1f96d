/** The same values (strings, numbers) in the same order. */
export function sameList<T extends string | number>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Both absent, or the same values in the same order. */
export function sameOptionalList<T extends string | number>(a: readonly T[] | undefined, b: readonly T[] | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && sameList(a, b));
}

/**
 * Appends every value of `from` to `to`. `to.push(...from)` passes each value as an argument,
 * and a list of tenant-made size (a service's 200,000 endpoints) overflows the stack that way.
 */
export function pushAll<T>(to: T[], from: Iterable<T>): void {
  for (const x of from) to.push(x);
}
