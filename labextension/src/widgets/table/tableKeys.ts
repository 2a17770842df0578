/**
 * The table's keyboard: arrows, Home/End and Page keys move the focus between rows (scrolling
 * vertically only), Enter opens a run's details or toggles a group, Space ticks a run.
 */
import React from 'react';

import type { RunsModel } from '../../model';
import type { DisplayRow } from '../../table/grouping';
import { ROW_HEIGHT } from './useVirtualWindow';

/** What the keyboard needs of the table. */
export interface ITableKeysOptions {
  model: RunsModel;
  scroller: React.RefObject<HTMLDivElement>;
  /** Rows in the display. */
  count: number;
  /** Header rows above the first row (sticky). */
  headerRows: number;
  /** The row at a display position. */
  at: (position: number) => DisplayRow | undefined;
  onToggleGroup?: (key: string) => void;
  /** Show or hide the runs nested in a run. */
  onToggleNested?: (id: string) => void;
}

/** Focus the row at a position if it is in the DOM; false when it is not. */
function focusRow(node: HTMLDivElement | null, position: number, headerRows: number): boolean {
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
}

/** The key handler of the row at `position`. */
export function tableKeyHandler(
  options: ITableKeysOptions
): (event: React.KeyboardEvent<HTMLTableRowElement>, position: number) => void {
  const { model, count } = options;
  return (event, position) => {
    const row = options.at(position);
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
      if (focusRow(options.scroller.current, moves[event.key], options.headerRows)) {
        event.preventDefault();
      }
    } else if (
      row.kind === 'run' &&
      row.nested &&
      (event.key === 'ArrowRight' || event.key === 'ArrowLeft') &&
      row.collapsed === (event.key === 'ArrowRight')
    ) {
      // A tree's keys: right shows the nested runs, left hides them.
      options.onToggleNested?.(row.run.id);
      event.preventDefault();
    } else if (row.kind === 'group' && (event.key === 'Enter' || event.key === ' ')) {
      options.onToggleGroup?.(row.key);
      event.preventDefault();
    } else if (row.kind === 'run' && event.key === 'Enter') {
      model.activate(row.run.id);
      event.preventDefault();
    } else if (row.kind === 'run' && event.key === ' ') {
      model.setSelected(row.run, !model.isSelected(row.run.id));
      event.preventDefault();
    }
  };
}
