/**
 * Sorting by a header click (the server sorts: `sort=`).
 */
import type { IColumn } from './columns';

/** The next sort when a header is clicked: ascending, descending, ascending... */
export function nextSort(current: string, column: IColumn): string {
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
