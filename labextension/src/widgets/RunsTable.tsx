/**
 * The virtualized runs table: only the rows on screen are in the DOM, and the model fetches
 * the pages they belong to. Sorting is done by the server (`sort=`).
 */
import React, { useEffect, useLayoutEffect, useRef, useState } from 'react';

import { durationBetween, formatDuration, formatTime, formatValue, splitColumn } from '../format';
import { useSignals } from '../hooks';
import { BASE_COLUMNS, ColumnKey, LEADING_COLUMNS, queryKey, RunsModel } from '../model';
import type { IRunSummary } from '../types';

/** Height of one row in pixels (rows must not wrap). */
export const ROW_HEIGHT = 26;
const OVERSCAN = 10;

const KNOWN_STATUSES = new Set(['running', 'finished', 'failed', 'crashed']);

/** CSS modifier for a status (unknown statuses share one look). */
export function statusClass(status: string | null | undefined): string {
  return `nbtrace-status nbtrace-status-${KNOWN_STATUSES.has(status ?? '') ? status : 'other'}`;
}

interface IColumn {
  key: ColumnKey;
  label: string;
  sort: string;
  width: number;
  numeric: boolean;
}

const BASE_WIDTHS: { [key: string]: number } = {
  name: 140,
  experiment: 100,
  status: 74,
  user: 80,
  started_at: 120,
  duration_s: 76
};

function columnsOf(model: RunsModel): IColumn[] {
  const base = BASE_COLUMNS.map(c => ({
    ...c,
    width: BASE_WIDTHS[c.key] ?? 90,
    numeric: c.key === 'duration_s'
  }));
  const extra = model.columns.map(key => {
    const { group, key: name } = splitColumn(key);
    return {
      key,
      label: name,
      sort: queryKey(key),
      width: 96,
      numeric: group !== 'tags',
      group
    };
  });
  // The chosen columns come right after name and status, where a narrow sidebar shows them.
  return [...base.slice(0, LEADING_COLUMNS), ...extra, ...base.slice(LEADING_COLUMNS)];
}

function cellText(run: IRunSummary, column: IColumn): string {
  switch (column.key) {
    case 'name':
      return run.name ?? '';
    case 'experiment':
      return run.experiment ?? '';
    case 'status':
      return run.status ?? '';
    case 'user':
      return run.user ?? '';
    case 'started_at':
      return formatTime(run.started_at);
    case 'duration_s':
      return formatDuration(run.duration_s ?? durationBetween(run.started_at, run.ended_at));
    default: {
      const { group, key } = splitColumn(column.key);
      const values = (run as any)[group] as { [k: string]: any } | undefined;
      return values && key in values ? formatValue(values[key]) : '';
    }
  }
}

/** Props of {@link RunsTable}. */
export interface IRunsTableProps {
  model: RunsModel;
}

/** The runs table. */
export function RunsTable(props: IRunsTableProps): JSX.Element {
  const { model } = props;
  useSignals(model.changed, model.selectionChanged);
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(400);

  useLayoutEffect(() => {
    const node = scroller.current;
    if (!node) {
      return;
    }
    const observer = new ResizeObserver(() => setHeight(node.clientHeight || 400));
    observer.observe(node);
    setHeight(node.clientHeight || 400);
    return () => observer.disconnect();
  }, []);

  const total = model.total ?? 0;
  const headerHeight = ROW_HEIGHT;
  const first = Math.max(0, Math.floor((scrollTop - headerHeight) / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(
    Math.max(total - 1, 0),
    Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN
  );

  useEffect(() => {
    model.setVisibleRange(first, last);
  }, [model, first, last, model.filter, model.sort]);

  // A new query starts at the top.
  useEffect(() => {
    if (scroller.current) {
      scroller.current.scrollTop = 0;
      setScrollTop(0);
    }
  }, [model.filter, model.sort]);

  const columns = columnsOf(model);
  const tableWidth = 30 + columns.reduce((sum, c) => sum + c.width, 0);

  const onSort = (column: IColumn) => {
    const current = model.sort;
    const descending = current === `-${column.sort}`;
    const ascending = current === column.sort;
    if (ascending) {
      model.setSort(`-${column.sort}`);
    } else if (descending) {
      model.setSort(column.sort);
    } else {
      // Times and numbers are most useful largest first.
      const startDesc = column.key === 'started_at' || column.key === 'duration_s';
      model.setSort(startDesc ? `-${column.sort}` : column.sort);
    }
  };

  const ariaSort = (column: IColumn): 'ascending' | 'descending' | 'none' => {
    if (model.sort === column.sort) {
      return 'ascending';
    }
    if (model.sort === `-${column.sort}`) {
      return 'descending';
    }
    return 'none';
  };

  const onRowKey = (event: React.KeyboardEvent<HTMLTableRowElement>, index: number) => {
    const run = model.rowAt(index);
    if (!run) {
      return;
    }
    if (event.key === 'Enter') {
      model.activate(run.id);
      event.preventDefault();
    } else if (event.key === ' ' && event.target === event.currentTarget) {
      model.setSelected(run, !model.isSelected(run.id));
      event.preventDefault();
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      const next = index + (event.key === 'ArrowDown' ? 1 : -1);
      const node = scroller.current;
      const row = node?.querySelector<HTMLElement>(`tr[data-index="${next}"]`);
      if (node && row) {
        row.focus({ preventScroll: true });
        // Scroll vertically only: the row is wider than the sidebar.
        const top = row.offsetTop - ROW_HEIGHT;
        if (top < node.scrollTop) {
          node.scrollTop = top;
        } else if (row.offsetTop + ROW_HEIGHT > node.scrollTop + node.clientHeight) {
          node.scrollTop = row.offsetTop + ROW_HEIGHT - node.clientHeight;
        }
        event.preventDefault();
      }
    }
  };

  // One tab stop in the table (roving tabindex): the active row when on screen, else the first.
  let tabbable = first;
  for (let index = first; index <= last; index++) {
    if (model.rowAt(index)?.id === model.activeId) {
      tabbable = index;
    }
  }

  const rows: JSX.Element[] = [];
  if (total > 0) {
    for (let index = first; index <= last; index++) {
      const run = model.rowAt(index);
      if (!run) {
        rows.push(
          <tr key={`loading-${index}`} className="nbtrace-RunsTable-placeholder" aria-hidden="true">
            <td colSpan={columns.length + 1}>…</td>
          </tr>
        );
        continue;
      }
      const active = run.id === model.activeId;
      const checked = model.isSelected(run.id);
      rows.push(
        <tr
          key={run.id}
          data-run-id={run.id}
          data-index={index}
          aria-rowindex={index + 2}
          aria-selected={active}
          tabIndex={index === tabbable ? 0 : -1}
          className={
            'nbtrace-RunsTable-row' +
            (active ? ' nbtrace-mod-active' : '') +
            (checked ? ' nbtrace-mod-checked' : '')
          }
          onMouseDown={event => {
            // Focus without the browser scrolling the wide row sideways.
            if (!(event.target instanceof HTMLInputElement)) {
              event.preventDefault();
              event.currentTarget.focus({ preventScroll: true });
            }
          }}
          onClick={() => model.activate(run.id)}
          onKeyDown={event => onRowKey(event, index)}
        >
          <td className="nbtrace-RunsTable-check">
            <input
              type="checkbox"
              aria-label={`Select ${run.name}`}
              checked={checked}
              onClick={event => event.stopPropagation()}
              onChange={event => model.setSelected(run, event.currentTarget.checked)}
            />
          </td>
          {columns.map(column => {
            const text = cellText(run, column);
            return (
              <td
                key={column.key}
                className={column.numeric ? 'nbtrace-num' : undefined}
                title={text}
              >
                {column.key === 'status' ? (
                  <span className={statusClass(run.status)}>{text}</span>
                ) : column.key === 'name' && run.parent ? (
                  <>
                    <span className="nbtrace-rerun-mark" title="re-execution">
                      ↻
                    </span>{' '}
                    {text}
                  </>
                ) : (
                  text
                )}
              </td>
            );
          })}
        </tr>
      );
    }
  }

  const topPad = first * ROW_HEIGHT;
  const bottomPad = Math.max(0, (total - 1 - last) * ROW_HEIGHT);

  return (
    <div
      className="nbtrace-RunsTable-scroll"
      ref={scroller}
      onScroll={event => setScrollTop(event.currentTarget.scrollTop)}
    >
      <table
        className="nbtrace-RunsTable"
        style={{ width: tableWidth }}
        aria-label="Runs"
        aria-rowcount={model.totalExact ? total + 1 : -1}
      >
        <colgroup>
          <col style={{ width: 30 }} />
          {columns.map(c => (
            <col key={c.key} style={{ width: c.width }} />
          ))}
        </colgroup>
        <thead>
          <tr aria-rowindex={1}>
            <th className="nbtrace-RunsTable-check">
              <span className="nbtrace-visually-hidden">Selected</span>
            </th>
            {columns.map(column => {
              const sort = ariaSort(column);
              return (
                <th
                  key={column.key}
                  aria-sort={sort}
                  className={column.numeric ? 'nbtrace-num' : undefined}
                  title={column.key.includes('.') ? column.key : column.label}
                >
                  <button className="nbtrace-sort" onClick={() => onSort(column)}>
                    {column.key.startsWith('metrics.') ? (
                      <span className="nbtrace-colgroup">m </span>
                    ) : column.key.startsWith('params.') ? (
                      <span className="nbtrace-colgroup">p </span>
                    ) : column.key.startsWith('tags.') ? (
                      <span className="nbtrace-colgroup">t </span>
                    ) : null}
                    {column.label}
                    <span className="nbtrace-sort-mark" aria-hidden="true">
                      {sort === 'ascending' ? ' ▲' : sort === 'descending' ? ' ▼' : ''}
                    </span>
                  </button>
                </th>
              );
            })}
          </tr>
        </thead>
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
