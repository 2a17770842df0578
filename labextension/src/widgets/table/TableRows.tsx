/**
 * Rows of the runs table: a run (checkbox, then one cell per column) and a group's header
 * (a button that collapses or expands the group).
 */
import React from 'react';

import { cellText, IColumn } from '../../table/columns';
import type { IRunSummary } from '../../types';

const KNOWN_STATUSES = new Set(['running', 'finished', 'failed', 'crashed']);
/** Groups whose absent values show as `—` (as the CLI's `-`). */
const VALUE_GROUPS = new Set(['params', 'metrics', 'tags']);

/** CSS modifier for a status (unknown statuses share one look). */
export function statusClass(status: string | null | undefined): string {
  return `nbtrace-status nbtrace-status-${KNOWN_STATUSES.has(status ?? '') ? status : 'other'}`;
}

/** What a row reports to the table. */
export interface IRowEvents {
  onActivate: () => void;
  onCheck: (checked: boolean) => void;
  onKeyDown: (event: React.KeyboardEvent<HTMLTableRowElement>) => void;
}

/** A run's place in the tree of nested runs. */
export interface ITreePlace {
  depth: number;
  /** Runs nested in this one (listed). */
  nested: number;
  collapsed: boolean;
  onToggle: () => void;
}

/** Props of {@link RunRow}. */
export interface IRunRowProps extends IRowEvents {
  run: IRunSummary;
  position: number;
  rowIndex: number;
  columns: IColumn[];
  active: boolean;
  checked: boolean;
  tabbable: boolean;
  tree?: ITreePlace;
}

/** The name cell's disclosure toggle and indent in the tree of nested runs. */
function TreeToggle(props: { run: IRunSummary; tree: ITreePlace }): JSX.Element {
  const { run, tree } = props;
  const indent = <span className="nbtrace-TreeIndent" style={{ width: tree.depth * 14 }} />;
  if (tree.nested === 0) {
    return (
      <>
        {indent}
        <span className="nbtrace-TreeToggle nbtrace-TreeToggle-leaf" aria-hidden="true" />
      </>
    );
  }
  const what = `${tree.nested} nested run${tree.nested === 1 ? '' : 's'} of ${run.name}`;
  return (
    <>
      {indent}
      <button
        className="nbtrace-TreeToggle"
        tabIndex={-1}
        aria-expanded={!tree.collapsed}
        aria-label={`${tree.collapsed ? 'Show' : 'Hide'} ${what}`}
        title={`${tree.collapsed ? 'Show' : 'Hide'} ${what}`}
        onMouseDown={event => event.stopPropagation()}
        onClick={event => {
          event.stopPropagation();
          tree.onToggle();
        }}
      >
        {tree.collapsed ? '▸' : '▾'}
      </button>
    </>
  );
}

function Cell(props: { run: IRunSummary; column: IColumn; tree?: ITreePlace }): JSX.Element {
  const { run, column, tree } = props;
  const text = cellText(run, column.key);
  return (
    <td
      className={
        (column.numeric ? 'nbtrace-num ' : '') +
        (column.key === 'name' ? 'nbtrace-sticky nbtrace-sticky-name' : '')
      }
      title={text}
    >
      {column.key === 'name' && tree && <TreeToggle run={run} tree={tree} />}
      {column.key === 'status' ? (
        <span className={statusClass(run.status)}>{text}</span>
      ) : column.key === 'name' && run.parent ? (
        <>
          <span className="nbtrace-rerun-mark" title="re-execution">
            ↻
          </span>{' '}
          {text}
        </>
      ) : text === '' && VALUE_GROUPS.has(column.group) ? (
        <span className="nbtrace-muted" aria-label="none">
          —
        </span>
      ) : (
        text
      )}
    </td>
  );
}

/** One run. */
export function RunRow(props: IRunRowProps): JSX.Element {
  const { run, active, checked } = props;
  return (
    <tr
      data-run-id={run.id}
      data-index={props.position}
      data-depth={props.tree?.depth}
      aria-level={props.tree ? props.tree.depth + 1 : undefined}
      aria-expanded={props.tree?.nested ? !props.tree.collapsed : undefined}
      aria-rowindex={props.rowIndex}
      aria-selected={active}
      tabIndex={props.tabbable ? 0 : -1}
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
      onClick={props.onActivate}
      onKeyDown={props.onKeyDown}
    >
      <td className="nbtrace-RunsTable-check nbtrace-sticky">
        <input
          type="checkbox"
          aria-label={`Select ${run.name}`}
          checked={checked}
          tabIndex={-1}
          onClick={event => event.stopPropagation()}
          onChange={event => props.onCheck(event.currentTarget.checked)}
        />
      </td>
      {props.columns.map(column => (
        <Cell key={column.key} run={run} column={column} tree={props.tree} />
      ))}
    </tr>
  );
}

/** A group's header row. */
export function GroupRow(props: {
  label: string;
  count: number;
  collapsed: boolean;
  position: number;
  rowIndex: number;
  span: number;
  tabbable: boolean;
  onToggle: () => void;
  onKeyDown: (event: React.KeyboardEvent<HTMLTableRowElement>) => void;
}): JSX.Element {
  return (
    <tr
      className="nbtrace-RunsTable-groupRow"
      data-index={props.position}
      aria-rowindex={props.rowIndex}
      aria-expanded={!props.collapsed}
      aria-label={`${props.label}, ${props.count} run${props.count === 1 ? '' : 's'}`}
      tabIndex={props.tabbable ? 0 : -1}
      onClick={props.onToggle}
      onKeyDown={props.onKeyDown}
    >
      <td colSpan={props.span}>
        <span className="nbtrace-GroupRow-label nbtrace-sticky-name">
          <span aria-hidden="true">{props.collapsed ? '▸' : '▾'} </span>
          {props.label} <span className="nbtrace-muted">({props.count})</span>
        </span>
      </td>
    </tr>
  );
}
