/**
 * The runs table in the main area ("nbtrace: Open runs table"): the filter box with its
 * history, a toolbar (Compare the ticked runs, Columns, Group by, Parallel coordinates),
 * the full-width table and, beside it, the details of the run opened with a click or Enter.
 * It has its own model (query, selection), so the sidebar stays the compact list.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import type { INotebookTracker } from '@jupyterlab/notebook';
import { refreshIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { SplitPanel } from '@lumino/widgets';
import React, { useMemo, useState } from 'react';

import { useSignals } from '../hooks';
import { nbtraceIcon } from '../icons';
import { ColumnKey, RunsModel } from '../model';
import { defaultColumns, layoutColumns, reorder } from '../table/columns';
import { GROUP_LIMIT, tagKeys } from '../table/grouping';
import { TableState } from '../table/TableState';
import type { IRunSummary } from '../types';
import { IColumnSource, ColumnsButton } from './ColumnChooser';
import { FilterBar } from './FilterBar';
import { ParallelCoordinates } from './ParallelCoordinates';
import { DetailsWidget } from './RunDetails';
import { RunsTable } from './RunsTable';
import { RunsModelWidget } from './RunsModelWidget';
import { CommandIDs, ErrorMessage } from './RunsView';
import { SelectionActions } from './SelectionActions';

/** Runs the default columns are computed from. */
const DEFAULTS_SAMPLE = 500;

/** The defaults last computed without a brush, per model. */
const unbrushedDefaults = new WeakMap<RunsModel, ColumnKey[]>();

/**
 * The columns of the table: the user's, or the defaults for the loaded runs. While a brush
 * narrows the table, the defaults stay those of the runs before it (else brushing an axis
 * would remove the very column it brushed).
 */
export function shownColumns(model: RunsModel, state: TableState): ColumnKey[] {
  if (state.columns.length) {
    return state.columns;
  }
  const cached = unbrushedDefaults.get(model);
  if (model.extraFilter && cached) {
    return cached;
  }
  const rows = model.loadedRows(DEFAULTS_SAMPLE).filter(r => !!r) as IRunSummary[];
  const columns = defaultColumns(rows);
  if (!model.extraFilter && rows.length) {
    unbrushedDefaults.set(model, columns);
  }
  return columns;
}

function columnSource(model: RunsModel, state: TableState): IColumnSource {
  return {
    changed: [model.changed, state.changed],
    available: () => model.availableColumns(),
    chosen: () => shownColumns(model, state),
    setChosen: keys => state.setColumns(keys),
    reset: () => state.setColumns([])
  };
}

function GroupBySelect(props: { model: RunsModel; state: TableState }): JSX.Element {
  const { model, state } = props;
  const tags = tagKeys(model.loadedRows(DEFAULTS_SAMPLE));
  const value = state.settings.groupBy;
  if (value.startsWith('tags.') && !tags.includes(value.slice(5))) {
    tags.push(value.slice(5));
  }
  return (
    <label className="nbtrace-inline">
      Group by{' '}
      <select
        className="nbtrace-select"
        value={value}
        onChange={e => state.setGroupBy(e.currentTarget.value)}
      >
        <option value="">nothing</option>
        <option value="experiment">experiment</option>
        <option value="parent">parent run</option>
        {tags.map(t => (
          <option key={t} value={`tags.${t}`}>
            tag {t}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Props of {@link MainRunsView}. */
export interface IMainRunsViewProps {
  model: RunsModel;
  state: TableState;
  commands: CommandRegistry;
}

/** The table, its filter and its toolbar. */
export function MainRunsView(props: IMainRunsViewProps): JSX.Element {
  const { model, state, commands } = props;
  useSignals(model.changed, model.selectionChanged, state.changed);
  const [parcoords, setParcoords] = useState(false);
  const source = useMemo(() => columnSource(model, state), [model, state]);
  const chosen = shownColumns(model, state);
  const columns = layoutColumns(chosen, {
    widths: state.settings.columnWidths,
    order: state.settings.columnOrder
  });
  const groupBy = state.settings.groupBy;
  const error = model.error;

  return (
    <div className="nbtrace-MainRuns">
      <FilterBar model={model} />
      <div className="nbtrace-Toolbar" role="toolbar" aria-label="Runs table actions">
        <SelectionActions
          model={model}
          verb="Tick"
          onCompare={() => void commands.execute(CommandIDs.compare, { source: 'table' })}
        />
        <span className="nbtrace-spacer" />
        <GroupBySelect model={model} state={state} />
        <button
          className="jp-Button jp-mod-styled jp-mod-minimal"
          aria-pressed={parcoords}
          onClick={() => setParcoords(!parcoords)}
          title="Parallel coordinates of the selected (or listed) runs"
        >
          Parallel coordinates
        </button>
        <ColumnsButton source={source} />
        <button
          className="jp-Button jp-mod-minimal nbtrace-iconButton"
          aria-label="Refresh runs"
          title="Refresh runs"
          onClick={() => void model.refresh()}
        >
          <refreshIcon.react tag="span" elementSize="normal" />
        </button>
      </div>
      {parcoords && <ParallelCoordinates model={model} keys={chosen} />}
      {error ? (
        <ErrorMessage title="Cannot list runs" message={error.message} />
      ) : (
        <>
          <RunsTable
            model={model}
            columns={columns}
            groupHeaders
            groupBy={groupBy}
            collapsed={state.collapsed}
            onToggleGroup={key => state.toggleGroup(key)}
            onResize={(key, width) => state.setWidth(key, width)}
            onMove={(moved, target) => state.setOrder(reorder(columns, moved, target))}
            label="Runs table"
          />
          <div className="nbtrace-StatusLine" aria-live="polite">
            {model.total === null
              ? 'Loading runs…'
              : `${model.total.toLocaleString()} run${model.total === 1 ? '' : 's'}` +
                (model.extraFilter ? ' in the brush' : '') +
                (groupBy && model.total > GROUP_LIMIT
                  ? ` (the first ${GROUP_LIMIT.toLocaleString()} grouped; narrow the filter for the rest)`
                  : '')}
          </div>
        </>
      )}
    </div>
  );
}

/** The table part as a widget; it polls only while on screen. */
class MainRunsContent extends RunsModelWidget {
  constructor(private readonly _props: IMainRunsViewProps) {
    super(_props.model);
    this.addClass('nbtrace-MainRunsContent');
  }

  protected render(): JSX.Element {
    return <MainRunsView {...this._props} />;
  }
}

/** Options of {@link createRunsTableWidget}. */
export interface IRunsTableWidgetOptions extends IMainRunsViewProps {
  tracker: INotebookTracker | null;
}

/** The main-area widget: the table and, on its right, the details of the opened run. */
export function createRunsTableWidget(options: IRunsTableWidgetOptions): MainAreaWidget {
  const split = new SplitPanel({ orientation: 'horizontal', spacing: 1 });
  split.addClass('nbtrace-MainRunsSplit');
  const table = new MainRunsContent(options);
  const details = new DetailsWidget({
    model: options.model,
    commands: options.commands,
    tracker: options.tracker
  });
  details.addClass('nbtrace-MainDetails');
  split.addWidget(table);
  split.addWidget(details);
  split.setRelativeSizes([3, 1]);
  const widget = new MainAreaWidget({ content: split });
  widget.id = 'nbtrace-runs-table';
  // Not "nbtrace…": the sidebar's tab is the one named nbtrace (design.md).
  widget.title.label = 'Runs table';
  widget.title.caption = 'All runs, full width';
  widget.title.icon = nbtraceIcon;
  widget.title.closable = true;
  widget.addClass('nbtrace-RunsTableWidget');
  return widget;
}
