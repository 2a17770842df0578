/**
 * A line diff of two texts (LCS), as unified-diff-like lines for display.
 */

/** One displayed line of a diff. */
export interface IDiffLine {
  kind: 'add' | 'del' | 'ctx';
  text: string;
}

/** Lines of `b` against `a`: unchanged, removed (`del`) and added (`add`). */
export function lineDiff(a: string, b: string): IDiffLine[] {
  const x = a.replace(/\n$/, '').split('\n');
  const y = b.replace(/\n$/, '').split('\n');
  const n = x.length;
  const m = y.length;
  if (n * m > 4_000_000) {
    // Too big to align: show the old text removed and the new one added.
    return [
      ...x.map(text => ({ kind: 'del' as const, text })),
      ...y.map(text => ({ kind: 'add' as const, text }))
    ];
  }
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: IDiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      out.push({ kind: 'ctx', text: x[i] });
      i++;
      j++;
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      out.push({ kind: 'del', text: x[i++] });
    } else {
      out.push({ kind: 'add', text: y[j++] });
    }
  }
  return out;
}
