// A small unified diff (line based, LCS) for `--dry-run`: what join/unjoin would change.

/** Splits into lines without their endings; a final line ending does not make an empty line. */
function lines(text: string): string[] {
  if (text === '') return [];
  const out = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (out[out.length - 1] === '') out.pop();
  return out;
}

type Op = { kind: ' ' | '-' | '+'; text: string; a: number; b: number };

function diffOps(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j] = LCS length of a[i..], b[j..]
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ kind: ' ', text: a[i++], a: i, b: ++j });
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) ops.push({ kind: '-', text: a[i++], a: i, b: j });
    else ops.push({ kind: '+', text: b[j++], a: i, b: j });
  }
  return ops;
}

/**
 * Unified diff of `before` -> `after` with `context` lines around changes; '' when equal.
 * `before`/`after` undefined stands for "absent" (shown as /dev/null-like labels).
 */
export function unifiedDiff(before: string | undefined, after: string | undefined, label: string, context = 3): string {
  if (before === after) return '';
  const a = lines(before ?? '');
  const b = lines(after ?? '');
  const head = [`--- ${before === undefined ? '(absent)' : `${label} (before)`}`, `+++ ${after === undefined ? '(absent)' : `${label} (after)`}`];
  const ops = diffOps(a, b);
  const changed = ops.map((o, k) => (o.kind !== ' ' ? k : -1)).filter((k) => k >= 0);
  if (changed.length === 0) {
    // Same lines, different line endings or final newline.
    return [...head, '@@ only line endings or the final newline differ @@', ''].join('\n');
  }
  const out = [...head];
  let k = 0;
  while (k < changed.length) {
    const from = Math.max(0, changed[k] - context);
    let to = Math.min(ops.length - 1, changed[k] + context);
    while (k + 1 < changed.length && changed[k + 1] - context <= to + 1) {
      k++;
      to = Math.min(ops.length - 1, changed[k] + context);
    }
    k++;
    const hunk = ops.slice(from, to + 1);
    const aStart = hunk.find((o) => o.kind !== '+');
    const bStart = hunk.find((o) => o.kind !== '-');
    const aLen = hunk.filter((o) => o.kind !== '+').length;
    const bLen = hunk.filter((o) => o.kind !== '-').length;
    const aFrom = aStart ? aStart.a : ops[from].a;
    const bFrom = bStart ? bStart.b : ops[from].b;
    out.push(`@@ -${aFrom},${aLen} +${bFrom},${bLen} @@`);
    for (const o of hunk) out.push(`${o.kind}${o.text}`);
  }
  return out.join('\n') + '\n';
}
