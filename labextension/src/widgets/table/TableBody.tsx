/**
 * The body of the runs table: the rows of the visible window (a placeholder where a page is
 * not loaded yet) between two pads that stand for the rows off screen.
 */
import React from 'react';

import type { RunsModel } from '../../model';
import type { IColumn } from '../../table/columns';
import type { DisplayRow } from '../../table/grouping';
import { GroupRow, RunRow } from './TableRows';
import { ROW_HEIGHT } from './useVirtualWindow';

/** Props of {@link TableBody}. */
export interface ITableBodyProps {
  model: RunsModel;
  columns: IColumn[];
  /** The visible window, display positions. */
  first: number;
  last: number;
  count: number;
  headerRows: number;
  at: (position: number) => DisplayRow | undefined;
  onKey: (event: React.KeyboardEvent<HTMLTableRowElement>, position: number) => void;
  onToggleGroup?: (key: string) => void;
  /** Show or hide the runs nested in a run. */
  toggleNested: (id: string) => void;
}

/** One tab stop in the table (roving tabindex): the active row when on screen, else the first. */
function tabbablePosition(props: ITableBodyProps): number {
  let tabbable = props.first;
  for (let p = props.first; p <= props.last; p++) {
    const row = props.at(p);
    if (row?.kind === 'run' && row.run.id === props.model.activeId) {
      tabbable = p;
    }
  }
  return tabbable;
}

/** The row at one display position. */
function BodyRow(props: ITableBodyProps & { position: number; tabbable: boolean }): JSX.Element {
  const { model, columns, position: p } = props;
  const row = props.at(p);
  const rowIndex = p + props.headerRows + 1;
  if (!row) {
    return (
      <tr className="nbtrace-RunsTable-placeholder" aria-hidden="true">
        <td colSpan={columns.length + 1}>…</td>
      </tr>
    );
  }
  if (row.kind === 'group') {
    return (
      <GroupRow
        label={row.label}
        count={row.count}
        collapsed={row.collapsed}
        position={p}
        rowIndex={rowIndex}
        span={columns.length + 1}
        tabbable={props.tabbable}
        onToggle={() => props.onToggleGroup?.(row.key)}
        onKeyDown={event => props.onKey(event, p)}
      />
    );
  }
  const run = row.run;
  return (
    <RunRow
      run={run}
      position={p}
      rowIndex={rowIndex}
      columns={columns}
      active={run.id === model.activeId}
      checked={model.isSelected(run.id)}
      tabbable={props.tabbable}
      onActivate={() => model.activate(run.id)}
      onCheck={checked => model.setSelected(run, checked)}
      onKeyDown={event => props.onKey(event, p)}
      tree={
        row.depth === undefined
          ? undefined
          : {
              depth: row.depth,
              nested: row.nested ?? 0,
              collapsed: !!row.collapsed,
              onToggle: () => props.toggleNested(run.id)
            }
      }
    />
  );
}

/** The key of a row for React: a run by id, a group by key, a placeholder by position. */
function rowKey(row: DisplayRow | undefined, position: number): string {
  return !row ? `loading-${position}` : row.kind === 'group' ? `group-${row.key}` : row.run.id;
}

/** The tbody. */
export function TableBody(props: ITableBodyProps): JSX.Element {
  const { first, last, count } = props;
  const tabbable = tabbablePosition(props);
  const rows: JSX.Element[] = [];
  for (let p = first; count > 0 && p <= last; p++) {
    rows.push(
      <BodyRow key={rowKey(props.at(p), p)} {...props} position={p} tabbable={p === tabbable} />
    );
  }
  const topPad = first * ROW_HEIGHT;
  const bottomPad = Math.max(0, (count - 1 - last) * ROW_HEIGHT);
  return (
    <tbody>
      {topPad > 0 && (
        <tr aria-hidden="true" className="nbtrace-RunsTable-pad" style={{ height: topPad }} />
      )}
      {rows}
      {bottomPad > 0 && (
        <tr aria-hidden="true" className="nbtrace-RunsTable-pad" style={{ height: bottomPad }} />
      )}
    </tbody>
  );
}
