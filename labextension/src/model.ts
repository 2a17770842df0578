/**
 * The state of the runs sidebar: query (filter, sort), the loaded pages of runs, the
 * selection and the active run. Views observe it through Lumino signals.
 *
 * Rows are fetched from the server a page at a time (`limit`/`offset`) as the table scrolls,
 * so the panel stays light with tens of thousands of runs; while visible, the pages on screen
 * are polled so new runs and status changes appear without a manual refresh.
 */
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { listRuns, NbtraceError } from './api';
import type { IRunSummary } from './types';

/** Rows fetched per request. */
export const PAGE_SIZE = 100;

/** Most filters kept in the history. */
export const HISTORY_SIZE = 20;

/** Longest wait between polls while the server keeps failing (the poll backs off to it). */
const MAX_POLL_MS = 300 * 1000;

/**
 * The filter history after `filter` was applied: it goes first, an older copy of it is
 * dropped, and the oldest entries past {@link HISTORY_SIZE} fall off.
 */
export function pushHistory(history: readonly string[], filter: string): string[] {
  return [filter, ...history.filter(f => f !== filter)].slice(0, HISTORY_SIZE);
}

/** A column of the runs table: a built-in field, or `params.X`, `metrics.X`, `tags.X`. */
export type ColumnKey = string;

/** Built-in columns, in display order. */
export const BASE_COLUMNS: { key: ColumnKey; label: string; sort: string }[] = [
  { key: 'name', label: 'Name', sort: 'name' },
  { key: 'status', label: 'Status', sort: 'status' },
  { key: 'experiment', label: 'Experiment', sort: 'experiment' },
  { key: 'user', label: 'User', sort: 'user' },
  { key: 'started_at', label: 'Started', sort: 'started_at' },
  { key: 'duration_s', label: 'Duration', sort: 'duration' }
];

/** Where the chosen param/metric columns go: right after these built-in columns. */
export const LEADING_COLUMNS = 2;

/**
 * The query-language key of a `params.X` / `metrics.X` / `tags.X` column: names outside
 * `[A-Za-z0-9_-]` are double-quoted (a quote doubled).
 */
export function queryKey(column: ColumnKey): string {
  const dot = column.indexOf('.');
  const group = column.slice(0, dot);
  const name = column.slice(dot + 1);
  return /^[\w-]+$/.test(name) ? `${group}.${name}` : `${group}."${name.replace(/"/g, '""')}"`;
}

/** The poll interval until the settings say otherwise. */
const DEFAULT_POLL_MS = 2000;

/** The poll's frequency for an interval in milliseconds (0: never). */
function pollFrequency(ms: number): IPoll.Frequency {
  return ms > 0
    ? { interval: ms, backoff: true, max: Math.max(ms, MAX_POLL_MS) }
    : { interval: Poll.NEVER, backoff: true, max: MAX_POLL_MS };
}

/** The persisted part of the model (state DB). */
export interface IRunsQueryState {
  filter: string;
  sort: string;
  history: string[];
}

/** The runs sidebar model. */
export class RunsModel {
  constructor() {
    this._changed.connect(() => this._revision++);
  }

  /** Emitted whenever rows, totals, query or errors change. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Emitted when the checked runs change. */
  get selectionChanged(): ISignal<this, void> {
    return this._selectionChanged;
  }

  /** Emitted with the new active run id (the one shown in the details). */
  get activeChanged(): ISignal<this, string | null> {
    return this._activeChanged;
  }

  /** Emitted after the query (filter or sort) changes, to persist it. */
  get queryChanged(): ISignal<this, IRunsQueryState> {
    return this._queryChanged;
  }

  /** Emitted when the chosen extra columns change, to persist them. */
  get columnsChanged(): ISignal<this, ColumnKey[]> {
    return this._columnsChanged;
  }

  /** The applied filter (query language). */
  get filter(): string {
    return this._filter;
  }

  /** The sort key, e.g. `-started_at` or `metrics.mse`. */
  get sort(): string {
    return this._sort;
  }

  /** Recent filters, newest first. */
  get history(): string[] {
    return this._history;
  }

  /**
   * A filter added to the user's (a parallel-coordinates brush), ANDed with it; not part of
   * the history.
   */
  get extraFilter(): string {
    return this._extraFilter;
  }

  /** The filter sent to the server: the user's and the extra one. */
  get effectiveFilter(): string {
    const parts = [this._filter, this._extraFilter].filter(f => f);
    return parts.length > 1 ? parts.map(f => `(${f})`).join(' and ') : (parts[0] ?? '');
  }

  /** The server's message for a bad filter, or null. */
  get filterError(): string | null {
    return this._filterError;
  }

  /** A failure that prevents listing runs (not installed, store unreadable...). */
  get error(): NbtraceError | null {
    return this._error;
  }

  /** Number of runs matching the filter (null before the first answer). */
  get total(): number | null {
    return this._total;
  }

  /**
   * False when more than `total` runs match: the server counts a filtered listing only up to a
   * bound past the requested page, and the bound grows as pages further down are loaded.
   */
  get totalExact(): boolean {
    return this._totalExact;
  }

  /** True while the first page of a new query is loading. */
  get loading(): boolean {
    return this._loading;
  }

  /** The extra param/metric/tag columns shown. */
  get columns(): ColumnKey[] {
    return this._columns;
  }

  /** Ids of the checked runs, in the order they were checked. */
  get selected(): string[] {
    return [...this._selected.keys()];
  }

  /** Names of the checked runs. */
  get selectedRuns(): IRunSummary[] {
    return [...this._selected.values()];
  }

  /** The run shown in the details pane. */
  get activeId(): string | null {
    return this._active;
  }

  /** Poll interval in milliseconds (0 disables polling). */
  get pollInterval(): number {
    return this._pollInterval;
  }
  set pollInterval(ms: number) {
    if (ms === this._pollInterval) {
      return;
    }
    this._pollInterval = ms;
    this._poll.frequency = pollFrequency(ms);
    void this._poll.schedule();
  }

  /** Whether the table is on screen (polling only runs while it is). */
  get visible(): boolean {
    return this._visible;
  }
  set visible(value: boolean) {
    if (value === this._visible) {
      return;
    }
    this._visible = value;
    if (value) {
      void this.refresh();
    }
  }

  /** The run at a table row, or undefined when its page is not loaded yet. */
  rowAt(index: number): IRunSummary | undefined {
    const page = this._pages.get(Math.floor(index / PAGE_SIZE));
    return page?.[index % PAGE_SIZE];
  }

  /**
   * The rows `0..limit-1` of the query as loaded so far (`undefined` where a page is not
   * loaded); used by grouping and by the default columns.
   */
  loadedRows(limit: number): (IRunSummary | undefined)[] {
    const count = Math.min(limit, this._total ?? 0);
    const out: (IRunSummary | undefined)[] = new Array(count);
    for (let i = 0; i < count; i++) {
      out[i] = this.rowAt(i);
    }
    return out;
  }

  /** Whether a loaded run is nested in another one (the table then draws a tree). */
  hasNested(): boolean {
    for (const page of this._pages.values()) {
      if (page.some(run => run.nested_in)) {
        return true;
      }
    }
    return false;
  }

  /** Counts the changes of the loaded rows (and everything else {@link changed} tells). */
  get revision(): number {
    return this._revision;
  }

  /** Whether a run is checked. */
  isSelected(id: string): boolean {
    return this._selected.has(id);
  }

  /** Param, metric and tag keys seen in the loaded rows, as column keys. */
  availableColumns(): ColumnKey[] {
    const keys = new Set<string>(this._columns);
    for (const page of this._pages.values()) {
      for (const run of page) {
        for (const group of ['params', 'metrics', 'tags'] as const) {
          for (const key of Object.keys(run[group] ?? {})) {
            keys.add(`${group}.${key}`);
          }
        }
      }
    }
    const order = { params: 0, metrics: 1, tags: 2 } as { [k: string]: number };
    return [...keys].sort((a, b) => {
      const ga = order[a.split('.')[0]] ?? 3;
      const gb = order[b.split('.')[0]] ?? 3;
      return ga - gb || a.localeCompare(b);
    });
  }

  /** Restore the persisted query without persisting it again. */
  restore(state: Partial<IRunsQueryState>, columns: ColumnKey[] | null): void {
    this._filter = state.filter ?? this._filter;
    this._sort = state.sort ?? this._sort;
    this._history = state.history ?? this._history;
    if (columns) {
      this._columns = [...columns];
    }
    this._ready = true;
    this._resetRows();
    void this._loadVisible();
  }

  /** Apply a new filter; the server validates it (errors land in {@link filterError}). */
  setFilter(filter: string): void {
    filter = filter.trim();
    if (filter === this._filter && !this._filterError) {
      return;
    }
    this._filter = filter;
    this._resetRows();
    void this._loadVisible().then(() => {
      if (!this._filterError && filter) {
        this._history = pushHistory(this._history, filter);
      }
      this._emitQuery();
    });
  }

  /** Set (or clear, with `''`) the {@link extraFilter}. */
  setExtraFilter(filter: string): void {
    filter = filter.trim();
    if (filter === this._extraFilter) {
      return;
    }
    this._extraFilter = filter;
    this._resetRows();
    void this._loadVisible();
  }

  /** Sort by a key (`-` prefix for descending). */
  setSort(sort: string): void {
    if (sort === this._sort) {
      return;
    }
    this._sort = sort;
    this._resetRows();
    void this._loadVisible();
    this._emitQuery();
  }

  /** Choose the extra columns. */
  setColumns(columns: ColumnKey[]): void {
    this._columns = [...columns];
    this._changed.emit();
    this._columnsChanged.emit(this._columns);
  }

  /** Check or uncheck a run. */
  setSelected(run: IRunSummary, selected: boolean): void {
    if (selected) {
      this._selected.set(run.id, run);
    } else {
      this._selected.delete(run.id);
    }
    this._selectionChanged.emit();
  }

  /** Uncheck everything. */
  clearSelection(): void {
    this._selected.clear();
    this._selectionChanged.emit();
  }

  /** Show a run in the details pane. */
  activate(id: string | null): void {
    if (id === this._active) {
      return;
    }
    this._active = id;
    this._activeChanged.emit(id);
    this._changed.emit();
  }

  /** Tell the model which rows are on screen; missing pages are fetched. */
  setVisibleRange(first: number, last: number): void {
    this._range = [Math.max(0, first), Math.max(0, last)];
    void this._loadVisible();
  }

  /** Re-fetch the rows on screen (used by polling and after edits). */
  async refresh(): Promise<void> {
    await this._loadVisible(true);
  }

  /** Stop polling and drop listeners. */
  dispose(): void {
    this._poll.dispose();
    this._disposed = true;
    Signal.clearData(this);
  }

  private _resetRows(): void {
    this._generation++;
    this._pages.clear();
    this._loading = true;
    this._changed.emit();
  }

  private _pagesInRange(): number[] {
    const [first, last] = this._range;
    const pages: number[] = [];
    const lastPage = Math.floor(last / PAGE_SIZE);
    for (let p = Math.floor(first / PAGE_SIZE); p <= lastPage; p++) {
      pages.push(p);
    }
    if (this._total !== null) {
      const maxPage = Math.max(0, Math.ceil(this._total / PAGE_SIZE) - 1);
      return pages.filter(p => p <= maxPage);
    }
    return pages.length ? pages : [0];
  }

  private async _loadVisible(force = false): Promise<void> {
    if (!this._ready) {
      return; // the persisted query is not restored yet
    }
    if (this._failedGeneration === this._generation) {
      return; // the server refused this query: asking again gets the same answer
    }
    const pages = this._pagesInRange().filter(
      p => force || (!this._pages.has(p) && !this._inflight.has(this._inflightKey(p)))
    );
    if (force) {
      // Pages off screen may be stale now: drop them, they are re-fetched on scroll.
      const keep = new Set(this._pagesInRange());
      for (const p of [...this._pages.keys()]) {
        if (!keep.has(p)) {
          this._pages.delete(p);
        }
      }
    }
    await Promise.all(pages.map(p => this._fetchPage(p)));
  }

  private async _fetchPage(page: number): Promise<void> {
    const generation = this._generation;
    const key = this._inflightKey(page);
    if (this._inflight.has(key)) {
      return this._inflight.get(key);
    }
    const promise = (async () => {
      try {
        const answer = await listRuns({
          filter: this.effectiveFilter || undefined,
          sort: this._sort || undefined,
          limit: PAGE_SIZE,
          offset: page * PAGE_SIZE
        });
        if (generation !== this._generation || this._disposed) {
          return;
        }
        this._pages.set(page, answer.runs ?? []);
        this._total = typeof answer.total === 'number' ? answer.total : (answer.runs ?? []).length;
        this._totalExact = answer.total_exact !== false;
        this._filterError = null;
        this._error = null;
        this._refreshSelected(answer.runs ?? []);
      } catch (error) {
        if (generation !== this._generation || this._disposed) {
          return;
        }
        const err =
          error instanceof NbtraceError
            ? error
            : new NbtraceError(String((error as Error)?.message ?? error), 0, 'network');
        if (err.status === 400 && err.kind === 'server') {
          this._filterError = err.message;
          this._failedGeneration = generation;
          this._error = null;
          this._pages.clear();
          this._total = 0;
        } else {
          this._error = err;
        }
      } finally {
        this._inflight.delete(key);
        if (generation === this._generation) {
          this._loading = false;
        }
      }
      this._changed.emit();
    })();
    this._inflight.set(key, promise);
    return promise;
  }

  /**
   * A fetch in flight is the page of one query: a page of the query before is no answer for
   * the one after it (else a filter set while the previous page loads would never be asked).
   */
  private _inflightKey(page: number): string {
    return `${this._generation}:${page}`;
  }

  private _refreshSelected(runs: IRunSummary[]): void {
    for (const run of runs) {
      if (this._selected.has(run.id)) {
        this._selected.set(run.id, run);
      }
    }
  }

  private _emitQuery(): void {
    this._queryChanged.emit({ filter: this._filter, sort: this._sort, history: this._history });
  }

  /**
   * One tick of the poll: re-fetch the rows on screen unless a fetch is under way. Rejects
   * when the server could not be reached, so the poll backs off until it answers again.
   */
  private async _pollTick(): Promise<void> {
    if (this._inflight.size > 0) {
      return;
    }
    await this.refresh();
    if (this._error) {
      throw this._error;
    }
  }

  private _filter = '';
  private _extraFilter = '';
  private _failedGeneration = -1;
  private _sort = '-started_at';
  private _history: string[] = [];
  private _filterError: string | null = null;
  private _error: NbtraceError | null = null;
  private _total: number | null = null;
  private _totalExact = true;
  private _loading = true;
  private _columns: ColumnKey[] = [];
  private _pages = new Map<number, IRunSummary[]>();
  private _inflight = new Map<string, Promise<void>>();
  private _generation = 0;
  private _range: [number, number] = [0, 50];
  private _selected = new Map<string, IRunSummary>();
  private _active: string | null = null;
  private _visible = false;
  private _pollInterval = DEFAULT_POLL_MS;
  // Polls only while the table is on screen and the page is not hidden; backs off on failure.
  private _poll = new Poll({
    factory: () => this._pollTick(),
    frequency: pollFrequency(DEFAULT_POLL_MS),
    standby: () => (!this._visible || this._pollInterval <= 0 ? true : 'when-hidden'),
    linger: 0
  });
  private _disposed = false;
  private _ready = false;
  private _revision = 0;
  private _changed = new Signal<this, void>(this);
  private _selectionChanged = new Signal<this, void>(this);
  private _activeChanged = new Signal<this, string | null>(this);
  private _queryChanged = new Signal<this, IRunsQueryState>(this);
  private _columnsChanged = new Signal<this, ColumnKey[]>(this);
}
