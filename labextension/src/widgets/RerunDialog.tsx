/**
 * The re-execute dialog: the run's params with their original values editable, the drift
 * between the recorded and the current environment, then progress and the verdict.
 *
 * A modal of its own rather than `showDialog`, because it stays open across the job's
 * states (edit → running → verdict) with buttons that change with them. The parts live in
 * `rerun/`: the param inputs, the replay options, the drift, the trust step, the progress.
 */
import React, { useEffect, useId, useRef, useState } from 'react';

import { ModalDialog } from './ModalDialog';

import { cancelJob, getDrift, getJob, startRerun } from '../api';
import { useAsync } from '../hooks';
import { readEdits, toText } from '../params';
import type { IJob, IRun, IRunSummary } from '../types';
import { DriftSection } from './rerun/DriftView';
import { JobProgress, jobOver } from './rerun/JobProgress';
import { ParamFields } from './rerun/ParamFields';
import { repeatCount, ReplayOptions } from './rerun/ReplayOptions';
import { TrustConfirmation } from './rerun/TrustConfirmation';
import { usePolled } from './rerun/usePolled';
import { useTrustRequest } from './rerun/useTrustRequest';

/** Milliseconds between job polls. */
const POLL_MS = 500;

/** Props of {@link RerunForm}. */
export interface IRerunFormProps {
  run: IRunSummary;
  onClose: () => void;
  /** Called with the new run id once the re-execution finished. */
  onNewRun: (id: string) => void;
}

/** Params only MLflow's client logged (autolog): the code never reads them back through
 * nbtrace, so an edited value would have no effect; shown, not editable. */
function mlflowOnlyParams(run: IRunSummary): Set<string> {
  const list = (run as IRun).extra?.mlflow_params;
  return new Set(Array.isArray(list) ? list.map(String) : []);
}

/** The content of the dialog. */
export function RerunForm(props: IRerunFormProps): JSX.Element {
  const { run, onClose, onNewRun } = props;
  const params = run.params ?? {};
  const id = useId();
  const [texts, setTexts] = useState<{ [k: string]: string }>(() =>
    Object.fromEntries(Object.entries(params).map(([n, v]) => [n, toText(v)]))
  );
  const [jobId, setJobId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [repeatText, setRepeatText] = useState('1');
  const [recordedModules, setRecordedModules] = useState(false);
  const drift = useAsync(() => getDrift(run.id), [run.id]);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);

  const job = usePolled<IJob>(jobId, {
    get: getJob,
    over: j => jobOver(j.state),
    intervalMs: POLL_MS,
    onOver: j => {
      if (j.run) {
        onNewRun(j.run);
      }
    },
    onError: setError
  });

  const blocked = drift.value?.parameters ?? {};
  const { overrides, floats, problems } = readEdits(params, texts, blocked);
  const repeat = repeatCount(repeatText);
  const valid = Object.keys(problems).length === 0 && repeat !== null;
  const trust = useTrustRequest(
    run,
    async withTrust =>
      setJobId(
        await startRerun(run.id, overrides, floats, undefined, withTrust, {
          repeat: repeat ?? 1,
          recordedModules
        })
      ),
    setError
  );

  const cancel = async () => {
    if (jobId) {
      try {
        await cancelJob(jobId);
      } catch (e) {
        setError((e as Error).message);
      }
    }
  };

  const state = job?.state ?? (jobId ? 'queued' : null);
  const finished = jobOver(state);

  return (
    <div className="nbtrace-Rerun">
      <h2 id={`${id}-title`} className="nbtrace-Rerun-title">
        Re-execute {run.name}
      </h2>
      <p className="nbtrace-muted">
        Replays the run's recorded cells in a fresh kernel, with these parameters, and compares the
        result with the original.
      </p>
      <ParamFields
        id={id}
        params={params}
        texts={texts}
        overrides={overrides}
        problems={problems}
        blocked={blocked}
        mlflowOnly={mlflowOnlyParams(run)}
        disabled={!!jobId}
        firstInput={first}
        onEdit={(name, text) => setTexts(t => ({ ...t, [name]: text }))}
      />
      <ReplayOptions
        id={id}
        disabled={!!jobId}
        recordedModules={recordedModules}
        repeatText={repeatText}
        onRecordedModules={setRecordedModules}
        onRepeatText={setRepeatText}
      />
      <DriftSection drift={drift} />
      {state && <JobProgress job={job} state={state} />}
      {trust.request && !jobId && (
        <TrustConfirmation
          request={trust.request}
          starting={trust.starting}
          onTrust={() => void trust.start(true)}
        />
      )}
      {error && (
        <div className="nbtrace-error" role="alert">
          {error}
        </div>
      )}
      <div className="nbtrace-Rerun-buttons">
        {!jobId && (
          <>
            <button className="jp-Button jp-mod-styled jp-mod-reject" onClick={onClose}>
              Close
            </button>
            <button
              className="jp-Button jp-mod-styled jp-mod-accept"
              disabled={!valid || trust.starting || trust.request !== null}
              onClick={() => void trust.start()}
            >
              Start
            </button>
          </>
        )}
        {jobId && !finished && (
          <button className="jp-Button jp-mod-styled jp-mod-warn" onClick={() => void cancel()}>
            Cancel
          </button>
        )}
        {jobId && (
          <button className="jp-Button jp-mod-styled jp-mod-accept" onClick={onClose}>
            Close
          </button>
        )}
      </div>
    </div>
  );
}

/** A modal dialog hosting {@link RerunForm}. */
export class RerunDialog extends ModalDialog {
  constructor(private readonly _options: Omit<IRerunFormProps, 'onClose'>) {
    super(`Re-execute ${_options.run.name}`);
  }

  protected renderForm(close: () => void): JSX.Element {
    return <RerunForm {...this._options} onClose={close} />;
  }
}
