/**
 * The "Runs" section of the sidebar: filter box, toolbar (Compare, columns, refresh),
 * the table and a status line.
 */
import { refreshIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import React, { useMemo } from 'react';

import { useSignals } from '../hooks';
import { RunsModel } from '../model';
import { ColumnsButton, IColumnSource } from './ColumnChooser';
import { FilterBar } from './FilterBar';
import { RunsModelWidget } from './RunsModelWidget';
import { RunsTable } from './RunsTable';
import { SelectionActions } from './SelectionActions';

export { MAX_COMPARE } from './SelectionActions';

/** Command ids used by the views. */
export const CommandIDs = {
  open: 'nbtrace:open',
  compare: 'nbtrace:compare',
  rerun: 'nbtrace:rerun',
  rerunRow: 'nbtrace:rerun-row',
  sweep: 'nbtrace:sweep',
  openAsNotebook: 'nbtrace:open-as-notebook',
  openAsNotebookRow: 'nbtrace:open-as-notebook-row',
  refresh: 'nbtrace:refresh',
  openTable: 'nbtrace:open-table'
};

/** The chooser's view of the sidebar model's extra columns. */
export function modelColumnSource(model: RunsModel): IColumnSource {
  return {
    changed: [model.changed],
    available: () => model.availableColumns(),
    chosen: () => model.columns,
    setChosen: keys => model.setColumns(keys)
  };
}

/** Props of {@link RunsSection}. */
export interface IRunsSectionProps {
  model: RunsModel;
  commands: CommandRegistry;
}

/** A message telling why runs cannot be listed. */
export function ErrorMessage(props: { title: string; message: string }): JSX.Element {
  return (
    <div className="nbtrace-ErrorMessage" role="alert">
      <strong>{props.title}</strong>
      <div>{props.message}</div>
    </div>
  );
}

/** The runs section. */
export function RunsSection(props: IRunsSectionProps): JSX.Element {
  const { model, commands } = props;
  useSignals(model.changed, model.selectionChanged);
  const source = useMemo(() => modelColumnSource(model), [model]);
  const error = model.error;

  return (
    <div className="nbtrace-RunsSection">
      <FilterBar model={model} />
      <div className="nbtrace-Toolbar" role="toolbar" aria-label="Runs actions">
        <SelectionActions
          model={model}
          verb="Select"
          onCompare={() => void commands.execute(CommandIDs.compare)}
        />
        <span className="nbtrace-spacer" />
        <ColumnsButton source={source} />
        <button
          className="jp-Button jp-mod-styled jp-mod-minimal"
          title="Open the runs table in the main area, full width"
          onClick={() => void commands.execute(CommandIDs.openTable)}
        >
          Open table
        </button>
        <button
          className="jp-Button jp-mod-minimal nbtrace-iconButton"
          aria-label="Refresh runs"
          title="Refresh runs"
          onClick={() => void model.refresh()}
        >
          <refreshIcon.react tag="span" elementSize="normal" />
        </button>
      </div>
      {error ? (
        <ErrorMessage
          title={
            error.kind === 'not-installed'
              ? 'nbtrace server extension is not installed'
              : error.kind === 'unavailable'
                ? 'The nbtrace store cannot be read'
                : 'Cannot list runs'
          }
          message={error.message}
        />
      ) : (
        <>
          <RunsTable model={model} />
          <div className="nbtrace-StatusLine" aria-live="polite">
            {model.total === null
              ? 'Loading runs…'
              : model.total === 0 && !model.filterError
                ? model.filter
                  ? 'No run matches this filter.'
                  : 'No runs yet. In a notebook: %load_ext nbtrace, then %track_run NAME.'
                : model.totalExact
                  ? `${model.total.toLocaleString()} run${model.total === 1 ? '' : 's'}`
                  : `More than ${model.total.toLocaleString()} runs`}
          </div>
        </>
      )}
    </div>
  );
}

/** The runs section as a Lumino widget (one section of the sidebar). */
export class RunsWidget extends RunsModelWidget {
  constructor(
    model: RunsModel,
    private readonly _commands: CommandRegistry
  ) {
    super(model);
    this.addClass('nbtrace-RunsWidget');
    this.title.label = 'Runs';
  }

  protected render(): JSX.Element {
    return <RunsSection model={this.runsModel} commands={this._commands} />;
  }
}
