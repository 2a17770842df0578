/**
 * What the user made of the main-area table: the chosen columns (none: the defaults), their
 * widths and order, the grouping and the collapsed groups. Persisted in the settings
 * (`tableColumns`, `columnWidths`, `columnOrder`, `groupBy`) except the collapsed groups.
 */
import { ISignal, Signal } from '@lumino/signaling';

import type { ColumnKey } from '../model';
import type { GroupBy } from './grouping';

/** The persisted part. */
export interface ITableSettings {
  tableColumns: ColumnKey[];
  columnWidths: { [key: string]: number };
  columnOrder: ColumnKey[];
  groupBy: GroupBy;
}

/** The main-area table's state. */
export class TableState {
  /** Emitted on every change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted when a persisted value changes (to save it). */
  get settingsChanged(): ISignal<this, ITableSettings> {
    return this._settingsChanged;
  }

  get settings(): ITableSettings {
    return this._settings;
  }

  /** Columns the user chose; empty means the defaults. */
  get columns(): ColumnKey[] {
    return this._settings.tableColumns;
  }

  get collapsed(): ReadonlySet<string> {
    return this._collapsed;
  }

  /** Take the persisted values (from the settings registry) without saving them again. */
  load(settings: Partial<ITableSettings>): void {
    this._settings = { ...this._settings, ...settings };
    this._changed.emit();
  }

  setColumns(columns: ColumnKey[]): void {
    this._update({ tableColumns: [...columns] });
  }

  setWidth(key: ColumnKey, width: number): void {
    this._update({ columnWidths: { ...this._settings.columnWidths, [key]: width } });
  }

  setOrder(order: ColumnKey[]): void {
    this._update({ columnOrder: [...order] });
  }

  setGroupBy(groupBy: GroupBy): void {
    this._collapsed = new Set();
    this._update({ groupBy });
  }

  toggleGroup(key: string): void {
    const next = new Set(this._collapsed);
    if (!next.delete(key)) {
      next.add(key);
    }
    this._collapsed = next;
    this._changed.emit();
  }

  private _update(patch: Partial<ITableSettings>): void {
    this._settings = { ...this._settings, ...patch };
    this._changed.emit();
    // Resizing emits many widths: save once the pointer rests.
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    this._timer = window.setTimeout(() => {
      this._timer = null;
      this._settingsChanged.emit(this._settings);
    }, 300);
  }

  private _settings: ITableSettings = {
    tableColumns: [],
    columnWidths: {},
    columnOrder: [],
    groupBy: ''
  };
  private _collapsed = new Set<string>();
  private _timer: number | null = null;
  private _changed = new Signal<this, void>(this);
  private _settingsChanged = new Signal<this, ITableSettings>(this);
}
