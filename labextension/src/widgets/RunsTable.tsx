/**
 * The virtualized runs table, shared by the sidebar (compact) and the main area (full width,
 * column groups, sticky name, resizable and movable columns, grouping): only the rows on
 * screen are in the DOM, and the model fetches the pages they belong to. Sorting is done by
 * the server (`sort=`).
 *
 * The parts live in `table/`: the visible window, the header, the body and its rows, the
 * keyboard. This module picks the rows (the query's, or grouped) and puts the parts together.
 */
import React, { useEffect, useRef, useState } from 'react';

import { sameItems, useSignals } from '../hooks';
import { BASE_COLUMNS, ColumnKey, LEADING_COLUMNS, RunsModel } from '../model';
import { IColumn, makeColumn } from '../table/columns';
import { DisplayRow, GROUP_LIMIT, GroupBy, groupRows } from '../table/grouping';
import { listingRange, TreeRow, treeRows } from '../table/nesting';
import { IHeaderActions, TableHeader } from './table/TableHeader';
import { nextSort } from '../table/sorting';
import { TableBody } from './table/TableBody';
import { tableKeyHandler } from './table/tableKeys';
import { ROW_HEIGHT, useVirtualWindow } from './table/useVirtualWindow';

export { statusClass } from './table/TableRows';
export { ROW_HEIGHT } from './table/useVirtualWindow';

/** The sidebar's columns: name and status, the chosen ones, then the other built-ins. */
export function compactColumns(chosen: ColumnKey[]): IColumn[] {
  const widths = { name: 140, experiment: 100, status: 74, user: 80, started_at: 120 };
  const base = BASE_COLUMNS.map(c => ({ ...makeColumn(c.key, widths), group: 'run' as const }));
  const extra = chosen.map(k => ({ ...makeColumn(k), width: 96 }));
  return [...base.slice(0, LEADING_COLUMNS), ...extra, ...base.slice(LEADING_COLUMNS)];
}

/** Props of {@link RunsTable}. */
export interface IRunsTableProps extends IHeaderActions {
  model: RunsModel;
  /** Columns to draw; the sidebar's compact set by default. */
  columns?: IColumn[];
  /** Show the row of column groups above the headers. */
  groupHeaders?: boolean;
  /** Group the rows (see table/grouping.ts); `''` for none. */
  groupBy?: GroupBy;
  collapsed?: ReadonlySet<string>;
  onToggleGroup?: (key: string) => void;
  /** Accessible name of the table. */
  label?: string;
}

/**
 * The query's rows as a tree when some loaded run is nested in another (null when none is),
 * drawn again only when the loaded rows change.
 */
function useTree(
  model: RunsModel,
  enabled: boolean,
  collapsed: ReadonlySet<string>
): TreeRow[] | null {
  // The rows are the model's: its revision says when they changed.
  const key = [model, model.revision, enabled, collapsed];
  const cache = useRef<{ key: unknown[]; rows: TreeRow[] | null } | null>(null);
  if (!cache.current || !sameItems(cache.current.key, key)) {
    const rows =
      enabled && model.hasNested() ? treeRows(model.loadedRows(model.total ?? 0), collapsed) : null;
    cache.current = { key, rows };
  }
  return cache.current.rows;
}

/** The runs table. */
export function RunsTable(props: IRunsTableProps): JSX.Element {
  const { model } = props;
  useSignals(model.changed, model.selectionChanged);
  const groupBy = props.groupBy ?? '';
  const total = model.total ?? 0;
  const grouped: DisplayRow[] | null = groupBy
    ? groupRows(model.loadedRows(GROUP_LIMIT), groupBy, props.collapsed ?? new Set())
    : null;
  const [closedNests, setClosedNests] = useState<ReadonlySet<string>>(() => new Set());
  const tree = useTree(model, !groupBy, closedNests);
  const toggleNested = (id: string) =>
    setClosedNests(closed => {
      const next = new Set(closed);
      if (!next.delete(id)) {
        next.add(id);
      }
      return next;
    });
  const count = grouped ? grouped.length : tree ? tree.length : total;
  const headerRows = props.groupHeaders ? 2 : 1;
  const win = useVirtualWindow(count, headerRows * ROW_HEIGHT);
  const { first, last, reset } = win;

  useEffect(() => {
    if (groupBy) {
      model.setVisibleRange(0, Math.min(total, GROUP_LIMIT) - 1);
    } else if (tree) {
      model.setVisibleRange(...listingRange(tree, first, last));
    } else {
      model.setVisibleRange(first, last);
    }
  }, [model, first, last, groupBy, total, tree, model.effectiveFilter, model.sort]);

  // A new query starts at the top.
  useEffect(() => reset(), [reset, model.effectiveFilter, model.sort, groupBy]);

  const columns = props.columns ?? compactColumns(model.columns);
  const tableWidth = 30 + columns.reduce((sum, c) => sum + c.width, 0);
  const at = (position: number): DisplayRow | undefined => {
    if (grouped) {
      return grouped[position];
    }
    if (tree) {
      const row = tree[position];
      return row?.kind === 'run' ? row : undefined;
    }
    const run = model.rowAt(position);
    return run ? { kind: 'run', index: position, run, group: '' } : undefined;
  };

  const onKey = tableKeyHandler({
    model,
    scroller: win.scroller,
    count,
    headerRows,
    at,
    onToggleGroup: props.onToggleGroup,
    onToggleNested: toggleNested
  });

  const body = { model, columns, first, last, count, headerRows, at, onKey, toggleNested };
  return (
    <div className="nbtrace-RunsTable-scroll" ref={win.scroller} onScroll={win.onScroll}>
      <table
        className="nbtrace-RunsTable"
        style={{ width: tableWidth }}
        aria-label={props.label ?? 'Runs'}
        aria-rowcount={model.totalExact ? count + headerRows : -1}
      >
        <colgroup>
          <col style={{ width: 30 }} />
          {columns.map(c => (
            <col key={c.key} style={{ width: c.width }} />
          ))}
        </colgroup>
        <TableHeader
          columns={columns}
          sort={model.sort}
          groups={!!props.groupHeaders}
          onSort={column => column.sort && model.setSort(nextSort(model.sort, column))}
          onResize={props.onResize}
          onMove={props.onMove}
        />
        <TableBody {...body} onToggleGroup={props.onToggleGroup} />
      </table>
    </div>
  );
}
