/**
 * The header of the runs table: an optional row of column groups (Run, Parameters, Metrics,
 * Tags, System) above the column headers, which sort on click, resize by dragging their
 * right edge and reorder by dragging the header onto another one.
 */
import React, { useRef } from 'react';

import { ColumnGroup, GROUP_LABELS, IColumn, MIN_WIDTH } from '../../table/columns';
import { ROW_HEIGHT } from './useVirtualWindow';

/** What the header can do to the columns (the compact sidebar table passes none). */
export interface IHeaderActions {
  onResize?: (key: string, width: number) => void;
  onMove?: (moved: string, target: string) => void;
}

/** Props of {@link TableHeader}. */
export interface ITableHeaderProps extends IHeaderActions {
  columns: IColumn[];
  sort: string;
  groups: boolean;
  onSort: (column: IColumn) => void;
}

/** The ARIA sort state of a column. */
export function ariaSort(sort: string, column: IColumn): 'ascending' | 'descending' | 'none' {
  if (column.sort && sort === column.sort) {
    return 'ascending';
  }
  if (column.sort && sort === `-${column.sort}`) {
    return 'descending';
  }
  return 'none';
}

function groupSpans(columns: IColumn[]): { group: ColumnGroup; span: number; first: string }[] {
  const spans: { group: ColumnGroup; span: number; first: string }[] = [];
  for (const c of columns) {
    const last = spans[spans.length - 1];
    if (last && last.group === c.group) {
      last.span++;
    } else {
      spans.push({ group: c.group, span: 1, first: c.key });
    }
  }
  return spans;
}

const MARK: { [group: string]: string } = { params: 'p ', metrics: 'm ', tags: 't ' };

function ResizeHandle(props: { column: IColumn; onResize: (key: string, w: number) => void }) {
  const { column, onResize } = props;
  const start = useRef<{ x: number; width: number } | null>(null);
  return (
    <span
      className="nbtrace-ColumnResize"
      role="separator"
      aria-orientation="vertical"
      aria-label={`Resize column ${column.label}`}
      aria-valuenow={column.width}
      tabIndex={-1}
      onClick={event => event.stopPropagation()}
      onPointerDown={event => {
        event.preventDefault();
        event.stopPropagation();
        event.currentTarget.setPointerCapture(event.pointerId);
        start.current = { x: event.clientX, width: column.width };
      }}
      onPointerMove={event => {
        if (start.current) {
          const width = start.current.width + event.clientX - start.current.x;
          onResize(column.key, Math.max(MIN_WIDTH, Math.round(width)));
        }
      }}
      onPointerUp={() => (start.current = null)}
      onKeyDown={event => {
        if (event.key === 'ArrowLeft' || event.key === 'ArrowRight') {
          const delta = event.key === 'ArrowLeft' ? -16 : 16;
          onResize(column.key, Math.max(MIN_WIDTH, column.width + delta));
          event.preventDefault();
        }
      }}
    />
  );
}

/** The `<thead>` of the runs table. */
export function TableHeader(props: ITableHeaderProps): JSX.Element {
  const { columns, sort, onSort, onResize, onMove } = props;
  return (
    <thead>
      {props.groups && (
        <tr className="nbtrace-RunsTable-groups" aria-rowindex={1}>
          <th className="nbtrace-RunsTable-check nbtrace-sticky" style={{ top: 0 }} />
          {groupSpans(columns).map(g => (
            <th
              key={g.first}
              colSpan={g.span}
              scope="colgroup"
              className={`nbtrace-ColumnGroup nbtrace-ColumnGroup-${g.group}`}
              style={{ top: 0 }}
            >
              {g.first === 'name' ? '' : GROUP_LABELS[g.group]}
            </th>
          ))}
        </tr>
      )}
      <tr aria-rowindex={props.groups ? 2 : 1}>
        <th
          className="nbtrace-RunsTable-check nbtrace-sticky"
          style={{ top: props.groups ? ROW_HEIGHT : 0 }}
        >
          <span className="nbtrace-visually-hidden">Selected</span>
        </th>
        {columns.map(column => {
          const state = ariaSort(sort, column);
          return (
            <th
              key={column.key}
              aria-sort={column.sort ? state : undefined}
              className={
                (column.numeric ? 'nbtrace-num ' : '') +
                (column.key === 'name' ? 'nbtrace-sticky nbtrace-sticky-name' : '')
              }
              style={{ top: props.groups ? ROW_HEIGHT : 0 }}
              title={column.key.includes('.') ? column.key : column.label}
              draggable={!!onMove && column.key !== 'name'}
              onDragStart={event => {
                event.dataTransfer.setData('text/x-nbtrace-column', column.key);
                event.dataTransfer.effectAllowed = 'move';
              }}
              onDragOver={event => {
                if (onMove && event.dataTransfer.types.includes('text/x-nbtrace-column')) {
                  event.preventDefault();
                }
              }}
              onDrop={event => {
                const moved = event.dataTransfer.getData('text/x-nbtrace-column');
                if (onMove && moved && moved !== column.key && column.key !== 'name') {
                  event.preventDefault();
                  onMove(moved, column.key);
                }
              }}
            >
              {column.sort ? (
                <button className="nbtrace-sort" onClick={() => onSort(column)}>
                  {MARK[column.group] && (
                    <span className="nbtrace-colgroup">{MARK[column.group]}</span>
                  )}
                  {column.label}
                  <span className="nbtrace-sort-mark" aria-hidden="true">
                    {state === 'ascending' ? ' ▲' : state === 'descending' ? ' ▼' : ''}
                  </span>
                </button>
              ) : (
                <span className="nbtrace-sort">{column.label}</span>
              )}
              {onResize && <ResizeHandle column={column} onResize={onResize} />}
            </th>
          );
        })}
      </tr>
    </thead>
  );
}
