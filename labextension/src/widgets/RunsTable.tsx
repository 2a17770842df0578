/**
 * The virtualized runs table, shared by the sidebar (compact) and the main area (full width,
 * column groups, sticky name, resizable and movable columns, grouping): only the rows on
 * screen are in the DOM, and the model fetches the pages they belong to. Sorting is done by
 * the server (`sort=`).
 *
 * The parts live in `table/`: the visible window, the header, the rows. This module owns the
 * keyboard (arrows move, Space ticks, Enter opens the details) and puts the parts together.
 */
import React, { useEffect } from 'react';

import { useSignals } from '../hooks';
import { BASE_COLUMNS, ColumnKey, LEADING_COLUMNS, RunsModel } from '../model';
import { IColumn, makeColumn } from '../table/columns';
import { DisplayRow, GROUP_LIMIT, GroupBy, groupRows } from '../table/grouping';
import { IHeaderActions, TableHeader } from './table/TableHeader';
import { GroupRow, RunRow } from './table/TableRows';
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

/** The next sort when a header is clicked: ascending, descending, ascending... */
function nextSort(current: string, column: IColumn): string {
  const key = column.sort ?? '';
  if (current === key) {
    return `-${key}`;
  }
  if (current === `-${key}`) {
    return key;
  }
  // Times and numbers are most useful largest first.
  return column.key === 'started_at' || column.key === 'duration_s' ? `-${key}` : key;
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
  const count = grouped ? grouped.length : total;
  const headerRows = props.groupHeaders ? 2 : 1;
  const win = useVirtualWindow(count, headerRows * ROW_HEIGHT);
  const { first, last, reset } = win;

  useEffect(() => {
    if (groupBy) {
      model.setVisibleRange(0, Math.min(total, GROUP_LIMIT) - 1);
    } else {
      model.setVisibleRange(first, last);
    }
  }, [model, first, last, groupBy, total, model.effectiveFilter, model.sort]);

  // A new query starts at the top.
  useEffect(() => reset(), [reset, model.effectiveFilter, model.sort, groupBy]);

  const columns = props.columns ?? compactColumns(model.columns);
  const tableWidth = 30 + columns.reduce((sum, c) => sum + c.width, 0);
  const at = (position: number): DisplayRow | undefined => {
    if (grouped) {
      return grouped[position];
    }
    const run = model.rowAt(position);
    return run ? { kind: 'run', index: position, run, group: '' } : undefined;
  };

  const focusRow = (position: number) => {
    const node = win.scroller.current;
    const row = node?.querySelector<HTMLElement>(`tr[data-index="${position}"]`);
    if (!node || !row) {
      return false;
    }
    row.focus({ preventScroll: true });
    // Scroll vertically only: the row can be wider than the view.
    const top = row.offsetTop - headerRows * ROW_HEIGHT;
    if (top < node.scrollTop) {
      node.scrollTop = top;
    } else if (row.offsetTop + ROW_HEIGHT > node.scrollTop + node.clientHeight) {
      node.scrollTop = row.offsetTop + ROW_HEIGHT - node.clientHeight;
    }
    return true;
  };

  const onKey = (event: React.KeyboardEvent<HTMLTableRowElement>, position: number) => {
    const row = at(position);
    if (!row || event.target !== event.currentTarget) {
      return;
    }
    const moves: { [key: string]: number } = {
      ArrowDown: position + 1,
      ArrowUp: position - 1,
      Home: 0,
      End: count - 1,
      PageDown: Math.min(count - 1, position + 10),
      PageUp: Math.max(0, position - 10)
    };
    if (event.key in moves) {
      if (focusRow(moves[event.key])) {
        event.preventDefault();
      }
    } else if (row.kind === 'group' && (event.key === 'Enter' || event.key === ' ')) {
      props.onToggleGroup?.(row.key);
      event.preventDefault();
    } else if (row.kind === 'run' && event.key === 'Enter') {
      model.activate(row.run.id);
      event.preventDefault();
    } else if (row.kind === 'run' && event.key === ' ') {
      model.setSelected(row.run, !model.isSelected(row.run.id));
      event.preventDefault();
    }
  };

  // One tab stop in the table (roving tabindex): the active row when on screen, else the first.
  let tabbable = first;
  for (let p = first; p <= last; p++) {
    const row = at(p);
    if (row?.kind === 'run' && row.run.id === model.activeId) {
      tabbable = p;
    }
  }

  const rows: JSX.Element[] = [];
  for (let p = first; count > 0 && p <= last; p++) {
    const row = at(p);
    if (!row) {
      rows.push(
        <tr key={`loading-${p}`} className="nbtrace-RunsTable-placeholder" aria-hidden="true">
          <td colSpan={columns.length + 1}>…</td>
        </tr>
      );
    } else if (row.kind === 'group') {
      rows.push(
        <GroupRow
          key={`group-${row.key}`}
          label={row.label}
          count={row.count}
          collapsed={row.collapsed}
          position={p}
          rowIndex={p + headerRows + 1}
          span={columns.length + 1}
          tabbable={p === tabbable}
          onToggle={() => props.onToggleGroup?.(row.key)}
          onKeyDown={event => onKey(event, p)}
        />
      );
    } else {
      const run = row.run;
      rows.push(
        <RunRow
          key={run.id}
          run={run}
          position={p}
          rowIndex={p + headerRows + 1}
          columns={columns}
          active={run.id === model.activeId}
          checked={model.isSelected(run.id)}
          tabbable={p === tabbable}
          onActivate={() => model.activate(run.id)}
          onCheck={checked => model.setSelected(run, checked)}
          onKeyDown={event => onKey(event, p)}
        />
      );
    }
  }

  const topPad = first * ROW_HEIGHT;
  const bottomPad = Math.max(0, (count - 1 - last) * ROW_HEIGHT);

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
        <tbody>
          {topPad > 0 && (
            <tr aria-hidden="true" className="nbtrace-RunsTable-pad" style={{ height: topPad }} />
          )}
          {rows}
          {bottomPad > 0 && (
            <tr
              aria-hidden="true"
              className="nbtrace-RunsTable-pad"
              style={{ height: bottomPad }}
            />
          )}
        </tbody>
      </table>
    </div>
  );
}
