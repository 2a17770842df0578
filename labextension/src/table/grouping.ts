/**
 * Grouping the runs of the table by experiment, by parent run (a run with its
 * re-executions), or by any tag (a sweep's runs share their sweep tag), with collapsible
 * groups.
 *
 * Grouping needs every row of a group, so it works on the first {@link GROUP_LIMIT} runs of
 * the query (loaded page by page as usual); the table says when more runs match.
 */
import type { IRunSummary } from '../types';

/** Most runs grouped at once. */
export const GROUP_LIMIT = 2000;

/** `''` (no grouping), `experiment`, `parent` or `tags.NAME`. */
export type GroupBy = string;

/** A row of a grouped table: a group's header or a run. */
export type DisplayRow =
  | { kind: 'group'; key: string; label: string; count: number; collapsed: boolean }
  | {
      kind: 'run';
      index: number;
      run: IRunSummary;
      group: string;
      /** In the tree of nested runs (table/nesting.ts): the run's level, its nested runs. */
      depth?: number;
      nested?: number;
      collapsed?: boolean;
    };

/** The group key and label of a run. */
export function groupOf(
  run: IRunSummary,
  by: GroupBy,
  names: Map<string, string>
): { key: string; label: string } {
  if (by === 'experiment') {
    return { key: run.experiment ?? '', label: run.experiment ?? '(no experiment)' };
  }
  if (by === 'parent') {
    const root = run.parent ?? run.id;
    const name = names.get(root);
    return { key: root, label: name ? `${name} (${root.slice(0, 8)})` : root.slice(0, 8) };
  }
  if (by.startsWith('tags.')) {
    const tag = by.slice(5);
    const value = run.tags?.[tag];
    return value === undefined
      ? { key: '\u0000none', label: `(no ${tag})` }
      : { key: String(value), label: `${tag} = ${String(value)}` };
  }
  return { key: '', label: '' };
}

/**
 * Rows of the table grouped: groups in the order their first run appears (so the table's sort
 * orders the groups too), each group's header followed by its runs unless it is collapsed.
 */
export function groupRows(
  runs: (IRunSummary | undefined)[],
  by: GroupBy,
  collapsed: ReadonlySet<string>
): DisplayRow[] {
  const names = new Map<string, string>();
  for (const run of runs) {
    if (run) {
      names.set(run.id, run.name);
    }
  }
  const groups = new Map<
    string,
    { label: string; members: { index: number; run: IRunSummary }[] }
  >();
  runs.forEach((run, index) => {
    if (!run) {
      return;
    }
    const { key, label } = groupOf(run, by, names);
    const group = groups.get(key) ?? { label, members: [] };
    group.members.push({ index, run });
    groups.set(key, group);
  });
  const out: DisplayRow[] = [];
  for (const [key, group] of groups) {
    const closed = collapsed.has(key);
    out.push({
      kind: 'group',
      key,
      label: group.label,
      count: group.members.length,
      collapsed: closed
    });
    if (!closed) {
      for (const m of group.members) {
        out.push({ kind: 'run', index: m.index, run: m.run, group: key });
      }
    }
  }
  return out;
}

/** The tag names the runs carry, for the "Group by" choice. */
export function tagKeys(runs: (IRunSummary | undefined)[]): string[] {
  const keys = new Set<string>();
  for (const run of runs) {
    for (const key of Object.keys(run?.tags ?? {})) {
      keys.add(key);
    }
  }
  return [...keys].sort();
}
