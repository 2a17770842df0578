/**
 * The columns of the runs table: which exist, how they are grouped (run, params, metrics,
 * tags, system), their widths and order as the user left them, the defaults shown when the
 * user picked none, and the text of a cell. No React here: the sidebar's compact table and the
 * main-area table both build their columns with these functions.
 */
import { durationBetween, formatDuration, formatTime, formatValue, splitColumn } from '../format';
import { BASE_COLUMNS, ColumnKey, queryKey } from '../model';
import type { IRunSummary } from '../types';

/** The header groups, in display order. */
export type ColumnGroup = 'run' | 'params' | 'metrics' | 'tags' | 'about' | 'system';

/** Labels of the header groups. */
export const GROUP_LABELS: { [group in ColumnGroup]: string } = {
  run: 'Run',
  params: 'Parameters',
  metrics: 'Metrics',
  tags: 'Tags',
  about: 'About',
  system: 'System'
};

/** One column as drawn. */
export interface IColumn {
  key: ColumnKey;
  label: string;
  /** Sort key for the server, or null when the column cannot be sorted. */
  sort: string | null;
  width: number;
  numeric: boolean;
  group: ColumnGroup;
}

/** Built-in columns of the main-area table beyond {@link BASE_COLUMNS}. */
export const EXTRA_BUILTINS: { key: ColumnKey; label: string; sort: string | null }[] = [
  { key: 'host', label: 'Host', sort: null },
  { key: 'note', label: 'Notes', sort: null }
];

const BUILTIN_GROUP: { [key: string]: ColumnGroup } = {
  name: 'run',
  status: 'run',
  experiment: 'about',
  note: 'about',
  user: 'system',
  host: 'system',
  started_at: 'system',
  duration_s: 'system'
};

/** Default widths in pixels. */
export const DEFAULT_WIDTHS: { [key: string]: number } = {
  name: 160,
  experiment: 110,
  status: 78,
  user: 90,
  host: 110,
  started_at: 130,
  duration_s: 80,
  note: 200
};

/** Narrowest a column can be resized to. */
export const MIN_WIDTH = 48;

/** Widths and order the user gave the columns (persisted in the settings). */
export interface IColumnLayout {
  widths: { [key: string]: number };
  order: ColumnKey[];
}

/** A built-in or `params.` / `metrics.` / `tags.` column. */
export function makeColumn(key: ColumnKey, widths: { [key: string]: number } = {}): IColumn {
  const builtin = [...BASE_COLUMNS, ...EXTRA_BUILTINS].find(c => c.key === key);
  if (builtin) {
    return {
      key,
      label: builtin.label,
      sort: builtin.sort,
      width: widths[key] ?? DEFAULT_WIDTHS[key] ?? 90,
      numeric: key === 'duration_s',
      group: BUILTIN_GROUP[key] ?? 'run'
    };
  }
  const { group, key: name } = splitColumn(key);
  return {
    key,
    label: name,
    sort: queryKey(key),
    width: widths[key] ?? 100,
    numeric: group !== 'tags',
    group
  };
}

const GROUP_ORDER: ColumnGroup[] = ['run', 'params', 'metrics', 'tags', 'about', 'system'];

/**
 * The columns of the main-area table: name first (it is the sticky column), then the other
 * columns grouped (status, then params, metrics and tags, where the runs differ, then
 * experiment and notes, then the system's), each group in the user's order (dragged headers)
 * or the given order.
 */
export function layoutColumns(
  chosen: ColumnKey[],
  layout: IColumnLayout,
  builtins: ColumnKey[] = [
    'name',
    'status',
    'experiment',
    'note',
    'user',
    'host',
    'started_at',
    'duration_s'
  ]
): IColumn[] {
  const keys = [...builtins, ...chosen.filter(k => !builtins.includes(k))];
  const rank = new Map(layout.order.map((k, i) => [k, i]));
  const columns = keys.map(k => makeColumn(k, layout.widths));
  const position = (c: IColumn, i: number) => rank.get(c.key) ?? layout.order.length + i;
  const indexed = columns.map((c, i) => ({ c, i }));
  indexed.sort((a, b) => {
    if (a.c.key === 'name' || b.c.key === 'name') {
      return a.c.key === 'name' ? -1 : 1;
    }
    const ga = GROUP_ORDER.indexOf(a.c.group);
    const gb = GROUP_ORDER.indexOf(b.c.group);
    return ga - gb || position(a.c, a.i) - position(b.c, b.i);
  });
  return indexed.map(x => x.c);
}

/** The new order after the column `moved` is dropped on the column `target`. */
export function reorder(columns: IColumn[], moved: ColumnKey, target: ColumnKey): ColumnKey[] {
  const keys = columns.map(c => c.key).filter(k => k !== moved);
  const at = keys.indexOf(target);
  const from = columns.findIndex(c => c.key === moved);
  const to = columns.findIndex(c => c.key === target);
  keys.splice(from < to ? at + 1 : at, 0, moved);
  return keys;
}

/** Most param columns the defaults add. */
const MAX_DEFAULT_PARAMS = 6;

/**
 * The columns shown when the user picked none: the parameters whose values differ among the
 * listed runs (those present in most runs first), then the most recently logged metric —
 * taken as the metric of the most recently started run that most listed runs share — so
 * runs with the same name are told apart at once.
 */
export function defaultColumns(runs: IRunSummary[]): ColumnKey[] {
  const values = new Map<string, Set<string>>();
  const counts = new Map<string, number>();
  for (const run of runs) {
    for (const [key, value] of Object.entries(run.params ?? {})) {
      const seen = values.get(key) ?? new Set<string>();
      seen.add(JSON.stringify(value));
      values.set(key, seen);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  const params = [...values.entries()]
    .filter(([key, seen]) => seen.size > 1 || (counts.get(key) ?? 0) < runs.length)
    .filter(([key]) => (counts.get(key) ?? 0) > 1 || runs.length <= 1)
    .map(([key]) => key)
    .sort((a, b) => (counts.get(b) ?? 0) - (counts.get(a) ?? 0) || a.localeCompare(b))
    .slice(0, MAX_DEFAULT_PARAMS)
    .map(k => `params.${k}`);
  return [...params, ...latestMetric(runs)];
}

function latestMetric(runs: IRunSummary[]): ColumnKey[] {
  const shared = new Map<string, number>();
  for (const run of runs) {
    for (const key of Object.keys(run.metrics ?? {})) {
      shared.set(key, (shared.get(key) ?? 0) + 1);
    }
  }
  const newest = [...runs]
    .filter(r => Object.keys(r.metrics ?? {}).length > 0)
    .sort((a, b) => (b.started_at ?? '').localeCompare(a.started_at ?? ''))[0];
  if (!newest) {
    return [];
  }
  const keys = Object.keys(newest.metrics).sort(
    (a, b) => (shared.get(b) ?? 0) - (shared.get(a) ?? 0) || a.localeCompare(b)
  );
  return [`metrics.${keys[0]}`];
}

/** The text of a cell; `''` when the run has no such value. */
export function cellText(run: IRunSummary, key: ColumnKey): string {
  switch (key) {
    case 'name':
      return run.name ?? '';
    case 'experiment':
      return run.experiment ?? '';
    case 'status':
      return run.status ?? '';
    case 'user':
      return run.user ?? '';
    case 'host':
      return run.host ?? '';
    case 'note':
      return ((run as { note?: string | null }).note ?? '').replace(/\s+/g, ' ');
    case 'started_at':
      return formatTime(run.started_at);
    case 'duration_s':
      return formatDuration(run.duration_s ?? durationBetween(run.started_at, run.ended_at));
    default: {
      const { group, key: name } = splitColumn(key);
      const values = (run as any)[group] as { [k: string]: any } | undefined;
      return values && name in values ? formatValue(values[name]) : '';
    }
  }
}
