/**
 * Nested runs as a tree (`start_run(nested=True)`, MLflow's parent runs): a run whose
 * `nested_in` run is in the listing goes under it, indented, after it and in the listing's
 * order; a collapsed run hides the runs nested in it. A run whose parent is not listed (the
 * filter left it out, or its page is not loaded yet) stays where the server put it, at the
 * top level, so filtering and sorting keep their meaning.
 *
 * The tree is drawn over the loaded pages: a position whose page is not loaded stays a
 * placeholder at its place.
 */
import type { IRunSummary } from '../types';

/** A run of the tree, or a position whose page is not loaded yet. */
export type TreeRow =
  | {
      kind: 'run';
      /** The run's position in the server's listing. */
      index: number;
      run: IRunSummary;
      group: '';
      /** 0 at the top level, 1 under a parent... */
      depth: number;
      /** Listed runs nested in this one. */
      nested: number;
      collapsed: boolean;
    }
  | { kind: 'pending'; index: number };

/** Whether any of the runs is nested in another one. */
export function anyNested(runs: Iterable<IRunSummary | undefined>): boolean {
  for (const run of runs) {
    if (run?.nested_in) {
      return true;
    }
  }
  return false;
}

/**
 * The rows of the listing (by position, `undefined` where not loaded) as a tree.
 *
 * @param collapsed - ids of the runs whose nested runs are hidden
 */
export function treeRows(
  rows: readonly (IRunSummary | undefined)[],
  collapsed: ReadonlySet<string>
): TreeRow[] {
  const position = new Map<string, number>();
  rows.forEach((run, index) => run && position.set(run.id, index));
  const children = new Map<string, number[]>();
  const placed = (run: IRunSummary) =>
    !!run.nested_in && run.nested_in !== run.id && position.has(run.nested_in);
  rows.forEach((run, index) => {
    if (run && placed(run)) {
      const list = children.get(run.nested_in!) ?? [];
      list.push(index);
      children.set(run.nested_in!, list);
    }
  });
  const out: TreeRow[] = [];
  const seen = new Set<number>();
  const visit = (index: number, depth: number, shown: boolean) => {
    if (seen.has(index)) {
      return; // a cycle of nested_in links: each run once
    }
    seen.add(index);
    const run = rows[index]!;
    const nested = children.get(run.id) ?? [];
    const closed = collapsed.has(run.id);
    if (shown) {
      out.push({
        kind: 'run',
        index,
        run,
        group: '',
        depth,
        nested: nested.length,
        collapsed: closed
      });
    }
    for (const child of nested) {
      visit(child, depth + 1, shown && !closed);
    }
  };
  // A for loop, not forEach: a sparse list's holes are rows not loaded too.
  for (let index = 0; index < rows.length; index++) {
    const run = rows[index];
    if (!run) {
      out.push({ kind: 'pending', index });
    } else if (!placed(run)) {
      visit(index, 0, true);
    }
  }
  // Runs nested in one another in a loop have no top: show them where they are listed.
  rows.forEach((run, index) => {
    if (run && !seen.has(index)) {
      visit(index, 0, true);
    }
  });
  return out;
}

/**
 * The listing positions to load for a window of the tree: those of its top-level runs and
 * placeholders (a nested run shown under its parent may be listed far away, and its page is
 * loaded already).
 */
export function listingRange(
  rows: readonly TreeRow[],
  first: number,
  last: number
): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (let p = first; p <= last && p < rows.length; p++) {
    const row = rows[p];
    if (row.kind === 'pending' || row.depth === 0) {
      low = Math.min(low, row.index);
      high = Math.max(high, row.index);
    }
  }
  return low === Infinity ? [first, last] : [low, high];
}
