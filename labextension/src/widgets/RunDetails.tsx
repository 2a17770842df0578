/**
 * The "Run details" section of the sidebar: everything recorded about the active run.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import type { INotebookTracker } from '@jupyterlab/notebook';
import { ReactWidget } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import React, { useEffect, useState } from 'react';

import { deleteRun, getRun, patchRun } from '../api';
import { useAsync, useSignals } from '../hooks';
import { RunsModel } from '../model';
import type { IRun } from '../types';
import { CellsSection, ArtifactsSection } from './details/CellsSection';
import { EnvironmentSection, GitSection, StatusSection } from './details/EnvironmentSection';
import { LineageSection } from './details/LineageSection';
import { NestingSection } from './details/NestingSection';
import { MetricsSection, ParamsSection } from './details/MetricsSection';
import { TagsNoteSection } from './details/TagsNoteSection';
import { WhatChangedSection } from './details/WhatChangedSection';
import { CommandIDs, ErrorMessage } from './RunsView';
import { statusClass } from './RunsTable';

/** Props of {@link RunDetails}. */
export interface IRunDetailsProps {
  model: RunsModel;
  commands: CommandRegistry;
  tracker: INotebookTracker | null;
}

function Header(props: {
  run: IRun;
  commands: CommandRegistry;
  onChanged: (run: IRun) => void;
  onDeleted: () => void;
}): JSX.Element {
  const { run, commands } = props;
  const [renaming, setRenaming] = useState(false);
  const [name, setName] = useState(run.name);
  const [mode, setMode] = useState<'all' | 'in_run'>('all');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setName(run.name), [run.id, run.name]);

  const rename = async () => {
    setRenaming(false);
    if (name.trim() && name !== run.name) {
      try {
        props.onChanged(await patchRun(run.id, { name: name.trim() }));
      } catch (e) {
        setError((e as Error).message);
      }
    }
  };

  const remove = async () => {
    const answer = await showDialog({
      title: 'Delete run',
      body: `Delete the run "${run.name}" (${run.id}) and everything recorded with it?`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (answer.button.accept) {
      try {
        await deleteRun(run.id);
        props.onDeleted();
      } catch (e) {
        setError((e as Error).message);
      }
    }
  };

  return (
    <div className="nbtrace-DetailsHeader">
      <div className="nbtrace-DetailsHeader-title">
        {renaming ? (
          <input
            className="jp-mod-styled"
            aria-label="Run name"
            value={name}
            autoFocus
            onChange={e => setName(e.currentTarget.value)}
            onBlur={() => void rename()}
            onKeyDown={e => {
              if (e.key === 'Enter') {
                void rename();
              } else if (e.key === 'Escape') {
                setName(run.name);
                setRenaming(false);
              }
            }}
          />
        ) : (
          <h2
            className="nbtrace-RunName"
            title="Double-click to rename"
            onDoubleClick={() => setRenaming(true)}
          >
            {run.name}
          </h2>
        )}
        <span className={statusClass(run.status)}>{run.status}</span>
      </div>
      <div className="nbtrace-muted nbtrace-RunId">
        <code>{run.id}</code>
        {run.experiment ? ` · ${run.experiment}` : ''}
      </div>
      <div className="nbtrace-Toolbar" role="toolbar" aria-label="Run actions">
        <button
          className="jp-Button jp-mod-styled jp-mod-accept"
          onClick={() => void commands.execute(CommandIDs.rerun, { id: run.id })}
          disabled={run.status === 'running'}
          title={
            run.status === 'running'
              ? 'The run is still running'
              : 'Re-execute this run in a fresh kernel'
          }
        >
          Re-execute
        </button>
        <button
          className="jp-Button jp-mod-styled"
          onClick={() => void commands.execute(CommandIDs.sweep, { id: run.id })}
          disabled={run.status === 'running' || Object.keys(run.params ?? {}).length === 0}
          title="Re-execute this run once per combination of parameter values"
        >
          Sweep…
        </button>
        <button
          className="jp-Button jp-mod-styled jp-mod-reject"
          onClick={() => void commands.execute(CommandIDs.openAsNotebook, { id: run.id, mode })}
          title="Create a new notebook from the recorded cells, with a parameters cell"
        >
          Open as notebook
        </button>
        <select
          className="nbtrace-select"
          aria-label="Cells of the new notebook"
          value={mode}
          onChange={e => setMode(e.currentTarget.value as 'all' | 'in_run')}
        >
          <option value="all">all cells up to the run</option>
          <option value="in_run">only the run's cells</option>
        </select>
        <span className="nbtrace-spacer" />
        <button
          className="jp-Button jp-mod-styled jp-mod-minimal"
          onClick={() => setRenaming(true)}
        >
          Rename
        </button>
        <button
          className="jp-Button jp-mod-styled jp-mod-minimal jp-mod-warn"
          onClick={() => void remove()}
        >
          Delete
        </button>
      </div>
      {error && (
        <div className="nbtrace-error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

/** Details of the active run. */
export function RunDetails(props: IRunDetailsProps): JSX.Element {
  const { model, commands, tracker } = props;
  useSignals(model.activeChanged);
  const id = model.activeId;
  const [override, setOverride] = useState<IRun | null>(null);
  const loaded = useAsync(() => (id ? getRun(id) : null), [id]);
  const { reload } = loaded;
  const candidate = override && override.id === id ? override : loaded.value;
  // Never show (and act on) the previous run while the clicked one loads.
  const run = candidate && candidate.id === id ? candidate : null;
  // A fresh load supersedes a local edit.
  useEffect(() => setOverride(null), [loaded.value]);

  // A running run keeps changing: reload it while it runs.
  useEffect(() => {
    if (run?.status !== 'running') {
      return;
    }
    const timer = window.setInterval(reload, 2000);
    return () => window.clearInterval(timer);
  }, [run?.id, run?.status, reload]);

  if (!id) {
    return (
      <div className="nbtrace-Details nbtrace-muted nbtrace-Empty">
        Click a run to see its details.
      </div>
    );
  }
  if (loaded.error && !run) {
    return (
      <div className="nbtrace-Details">
        <ErrorMessage title="Cannot load the run" message={loaded.error.message} />
      </div>
    );
  }
  if (!run) {
    return <div className="nbtrace-Details nbtrace-muted nbtrace-Empty">Loading…</div>;
  }
  const changed = (r: IRun) => {
    setOverride({ ...run, ...r });
    void model.refresh();
  };
  return (
    <div className="nbtrace-Details" aria-label={`Details of ${run.name}`}>
      <Header
        run={run}
        commands={commands}
        onChanged={changed}
        onDeleted={() => {
          model.activate(null);
          void model.refresh();
        }}
      />
      <StatusSection run={run} />
      <ParamsSection run={run} />
      <MetricsSection run={run} />
      <LineageSection run={run} onSelect={rid => model.activate(rid)} />
      <NestingSection run={run} onSelect={rid => model.activate(rid)} />
      <TagsNoteSection run={run} onChanged={changed} />
      <CellsSection run={run} />
      <ArtifactsSection run={run} />
      <WhatChangedSection run={run} tracker={tracker} />
      <EnvironmentSection run={run} />
      <GitSection run={run} />
    </div>
  );
}

/** The details section as a Lumino widget. */
export class DetailsWidget extends ReactWidget {
  constructor(private readonly _props: IRunDetailsProps) {
    super();
    this.addClass('nbtrace-DetailsWidget');
    this.title.label = 'Run details';
  }

  protected render(): JSX.Element {
    return <RunDetails {...this._props} />;
  }
}
