/**
 * The "Runs" section of the sidebar: filter box, toolbar (Compare, columns, refresh),
 * the table and a status line.
 */
import { ReactWidget, refreshIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import React, { useMemo } from 'react';

import { useSignals } from '../hooks';
import { RunsModel } from '../model';
import { ColumnsButton, IColumnSource } from './ColumnChooser';
import { FilterBar } from './FilterBar';
import { RunsTable } from './RunsTable';

/** Most runs one comparison takes. */
export const MAX_COMPARE = 20;

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
  const count = model.selected.length;
  const canCompare = count >= 2 && count <= MAX_COMPARE;
  const error = model.error;

  return (
    <div className="nbtrace-RunsSection">
      <FilterBar model={model} />
      <div className="nbtrace-Toolbar" role="toolbar" aria-label="Runs actions">
        <button
          className="jp-Button jp-mod-styled jp-mod-accept nbtrace-CompareButton"
          disabled={!canCompare}
          title={
            canCompare
              ? 'Compare the selected runs'
              : `Select 2 to ${MAX_COMPARE} runs to compare them`
          }
          onClick={() => void commands.execute(CommandIDs.compare)}
        >
          Compare
        </button>
        <span className="nbtrace-muted nbtrace-SelectedCount" aria-live="polite">
          {count > 0 ? `${count} selected` : ''}
        </span>
        {count > 0 && (
          <button
            className="jp-Button jp-mod-styled jp-mod-minimal nbtrace-link"
            onClick={() => model.clearSelection()}
          >
            Clear
          </button>
        )}
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
export class RunsWidget extends ReactWidget {
  constructor(
    private readonly _model: RunsModel,
    private readonly _commands: CommandRegistry
  ) {
    super();
    this.addClass('nbtrace-RunsWidget');
    this.title.label = 'Runs';
  }

  protected render(): JSX.Element {
    return <RunsSection model={this._model} commands={this._commands} />;
  }

  // Polling runs only while the table is on screen.
  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._model.visible = this.isVisible;
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.visible = true;
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._model.visible = false;
  }

  protected onBeforeDetach(msg: Message): void {
    this._model.visible = false;
    super.onBeforeDetach(msg);
  }
}
