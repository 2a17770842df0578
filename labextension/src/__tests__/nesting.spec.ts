import { listingRange, TreeRow, treeRows } from '../table/nesting';
import type { IRunSummary } from '../types';

function run(id: string, nestedIn: string | null = null): IRunSummary {
  return { id, name: id, nested_in: nestedIn } as IRunSummary;
}

function shape(rows: TreeRow[]): string[] {
  return rows.map(r =>
    r.kind === 'pending' ? `…${r.index}` : `${'-'.repeat(r.depth)}${r.run.id}`
  );
}

describe('treeRows', () => {
  it('puts nested runs under their parent, in the listing order', () => {
    // Newest first: the children were started after their parent.
    const rows = [run('c2', 'p'), run('x'), run('c1', 'p'), run('p'), run('g', 'c1')];
    expect(shape(treeRows(rows, new Set()))).toEqual(['x', 'p', '-c2', '-c1', '--g']);
  });

  it('counts the nested runs and hides them when collapsed', () => {
    const rows = [run('p'), run('c1', 'p'), run('g', 'c1'), run('y')];
    const tree = treeRows(rows, new Set(['p']));
    expect(shape(tree)).toEqual(['p', 'y']);
    expect(tree[0]).toMatchObject({ nested: 1, collapsed: true });
  });

  it('keeps a run whose parent is not listed at the top, where it is listed', () => {
    const rows = [run('a'), run('orphan', 'filtered-out'), run('b')];
    expect(shape(treeRows(rows, new Set()))).toEqual(['a', 'orphan', 'b']);
  });

  it('keeps the places of rows not loaded yet', () => {
    const rows = [run('p'), undefined, run('c', 'p'), undefined];
    expect(shape(treeRows(rows, new Set()))).toEqual(['p', '-c', '…1', '…3']);
  });

  it('shows each run of a nesting loop once', () => {
    const rows = [run('a', 'b'), run('b', 'a')];
    expect(shape(treeRows(rows, new Set())).sort()).toEqual(['-b', 'a']);
  });
});

describe('listingRange', () => {
  it('spans the top-level runs and placeholders of the window, not a far nested run', () => {
    const rows: (IRunSummary | undefined)[] = [run('p'), run('q')];
    rows[500] = run('far', 'p');
    const tree = treeRows(rows, new Set());
    // p, far (nested, listed at 500), q, then the placeholders 2..499
    expect(listingRange(tree, 0, 3)).toEqual([0, 2]);
  });
});
