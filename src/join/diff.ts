// The unified diff `--dry-run` prints for what join/unjoin would change, made by jsdiff (`diff`):
// standard hunks, and "\ No newline at end of file" where a value has no final line ending
// (most ConfigMap values), so the output is the exact change.
import { OMIT_HEADERS, createTwoFilesPatch } from 'diff';

/**
 * Unified diff of `before` -> `after` with `context` lines around changes; '' when equal.
 * `before`/`after` undefined stands for "absent" (labelled so, diffed as empty).
 */
export function unifiedDiff(before: string | undefined, after: string | undefined, label: string, context = 3): string {
  if (before === after) return '';
  const from = before === undefined ? '(absent)' : `${label} (before)`;
  const to = after === undefined ? '(absent)' : `${label} (after)`;
  // Labels as they are: jsdiff would C-quote one with a '"' (an annotation key) like a file name.
  const hunks = createTwoFilesPatch(from, to, before ?? '', after ?? '', undefined, undefined, { context, headerOptions: OMIT_HEADERS });
  return `--- ${from}\n+++ ${to}\n${hunks}`;
}
