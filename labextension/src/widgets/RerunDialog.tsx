/**
 * The re-execute dialog: the run's params with their original values editable, the drift
 * between the recorded and the current environment, then progress and the verdict.
 *
 * A modal of its own rather than `showDialog`, because it stays open across the job's
 * states (edit → running → verdict) with buttons that change with them.
 */
import React, { useEffect, useId, useRef, useState } from 'react';

import { ModalDialog } from './ModalDialog';

import { cancelJob, getDrift, getJob, getRun, needsTrust, startRerun } from '../api';
import { formatValue, sameValue } from '../format';
import { useAsync } from '../hooks';
import type { IDrift, IJob, IRecordedCell, IRun, IRunSummary, JSONValue } from '../types';
import { VerdictDetails } from './details/LineageSection';

/** Milliseconds between job polls. */
const POLL_MS = 500;

/** The text of a param value in its input. */
function toText(value: JSONValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Parse an edited value with the type of the original: numbers stay numbers, booleans
 * booleans, strings strings; lists and objects are JSON.
 *
 * @throws Error with a message for the user when the text does not fit the type
 */
export function parseEdited(text: string, original: JSONValue): JSONValue {
  if (typeof original === 'string') {
    return text;
  }
  const trimmed = text.trim();
  if (typeof original === 'number') {
    if (['NaN', 'nan'].includes(trimmed)) {
      return 'NaN';
    }
    const n = Number(trimmed);
    if (trimmed === '' || Number.isNaN(n)) {
      throw new Error('expects a number');
    }
    return n;
  }
  if (typeof original === 'boolean') {
    if (/^(true|1|yes)$/i.test(trimmed)) {
      return true;
    }
    if (/^(false|0|no)$/i.test(trimmed)) {
      return false;
    }
    throw new Error('expects true or false');
  }
  try {
    return JSON.parse(trimmed);
  } catch {
    throw new Error('expects a JSON value');
  }
}

function DriftView(props: { drift: IDrift }): JSX.Element {
  const { drift } = props;
  if (drift.remote) {
    return (
      <div className="nbtrace-muted">
        Not checked before the replay: the kernel runs on the {drift.remote}. The verdict lists
        every environment difference once it ran.
      </div>
    );
  }
  const pk = drift.packages ?? { changed: [], added: [], removed: [] };
  const items: string[] = [];
  if (drift.python) {
    items.push(`Python ${drift.python.recorded ?? '?'} → ${drift.python.current ?? '?'}`);
  }
  if (drift.platform) {
    items.push(`Platform ${drift.platform.recorded ?? '?'} → ${drift.platform.current ?? '?'}`);
  }
  for (const p of pk.changed ?? []) {
    items.push(`${p.name} ${p.recorded ?? '?'} → ${p.current ?? '?'}`);
  }
  for (const p of pk.added ?? []) {
    items.push(`${p.name} ${p.current ?? ''} added`);
  }
  for (const p of pk.removed ?? []) {
    items.push(`${p.name} ${p.recorded ?? ''} removed`);
  }
  for (const [kind, files] of [
    ['Data file', drift.inputs ?? []],
    ['Module', drift.modules ?? []]
  ] as const) {
    for (const f of files) {
      items.push(
        f.current === null
          ? `${kind} ${f.path} is missing`
          : `${kind} ${f.path} changed since the run`
      );
    }
  }
  const missing =
    drift.nbtrace_installed === false ? (
      <div className="nbtrace-error">
        nbtrace is not installed in the kernel{drift.kernel_name ? ` ${drift.kernel_name}` : ''}:
        the re-execution cannot record a run.
      </div>
    ) : null;
  if (items.length === 0) {
    return (
      <>
        {missing}
        <div className="nbtrace-ok">
          No drift: the kernel{drift.kernel_name ? ` ${drift.kernel_name}` : ''} has the recorded
          environment.
        </div>
      </>
    );
  }
  return (
    <div className="nbtrace-Drift">
      {missing}
      <div className="nbtrace-warn">
        The environment drifted since the run
        {drift.kernel_name ? ` (kernel ${drift.kernel_name})` : ''}: {items.length} difference
        {items.length === 1 ? '' : 's'}.
      </div>
      <ul>
        {items.slice(0, 50).map(item => (
          <li key={item}>{item}</li>
        ))}
        {items.length > 50 && <li>… and {items.length - 50} more</li>}
      </ul>
    </div>
  );
}

/** What the server said when it asked for trust, and the code that would run. */
export interface ITrustRequest {
  reason: string;
  recordedBy: string;
  cells: IRecordedCell[] | null;
}

/**
 * The confirmation step for a run recorded by another user or host, or imported: who
 * recorded it, the code that will run (as text, never as markup) and an explicit choice.
 */
export function TrustConfirmation(props: {
  request: ITrustRequest;
  starting: boolean;
  onTrust: () => void;
}): JSX.Element {
  const { request, starting, onTrust } = props;
  const id = useId();
  const [checked, setChecked] = useState(false);
  return (
    <section className="nbtrace-Rerun-trust" aria-label="Trust this code">
      <h3>Trust this code?</h3>
      <div className="nbtrace-warn" role="alert">
        Recorded by <strong>{request.recordedBy}</strong>. {request.reason}
      </div>
      <p className="nbtrace-muted">The cells below will run in a kernel started as you:</p>
      <div className="nbtrace-Rerun-code" tabIndex={0} aria-label="Code that will run">
        {request.cells === null && <div className="nbtrace-muted">Loading the code…</div>}
        {request.cells?.map(c => (
          <pre key={c.seq} className="nbtrace-Rerun-cell">
            <span className="nbtrace-muted">[{c.seq}] </span>
            {c.source}
          </pre>
        ))}
      </div>
      <div>
        <input
          id={`${id}-trust`}
          type="checkbox"
          checked={checked}
          onChange={e => setChecked(e.currentTarget.checked)}
        />
        <label htmlFor={`${id}-trust`}>I have read this code and trust it</label>
      </div>
      <button
        className="jp-Button jp-mod-styled jp-mod-warn"
        disabled={!checked || starting || request.cells === null}
        onClick={onTrust}
      >
        Trust and run
      </button>
    </section>
  );
}

/** Props of {@link RerunForm}. */
export interface IRerunFormProps {
  run: IRunSummary;
  onClose: () => void;
  /** Called with the new run id once the re-execution finished. */
  onNewRun: (id: string) => void;
}

/** The content of the dialog. */
export function RerunForm(props: IRerunFormProps): JSX.Element {
  const { run, onClose, onNewRun } = props;
  const params = run.params ?? {};
  const names = Object.keys(params).sort();
  const fixedList = (run as IRun).extra?.mlflow_params;
  // Params only MLflow's client logged (autolog): the code never reads them back through
  // nbtrace, so an edited value would have no effect; shown, not editable.
  const mlflowOnly = new Set(Array.isArray(fixedList) ? fixedList.map(String) : []);
  const id = useId();
  const [texts, setTexts] = useState<{ [k: string]: string }>(() =>
    Object.fromEntries(names.map(n => [n, toText(params[n])]))
  );
  const [job, setJob] = useState<IJob | null>(null);
  const [jobId, setJobId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const [repeatText, setRepeatText] = useState('1');
  const [recordedModules, setRecordedModules] = useState(false);
  const [trustRequest, setTrustRequest] = useState<ITrustRequest | null>(null);
  const drift = useAsync(() => getDrift(run.id), [run.id]);
  const first = useRef<HTMLInputElement>(null);

  useEffect(() => first.current?.focus(), []);

  // Poll the job until it ends.
  useEffect(() => {
    if (!jobId) {
      return;
    }
    let live = true;
    let timer = 0;
    const poll = async () => {
      try {
        const state = await getJob(jobId);
        if (!live) {
          return;
        }
        setJob(state);
        if (['done', 'error', 'cancelled'].includes(state.state)) {
          if (state.run) {
            onNewRun(state.run);
          }
          return;
        }
      } catch (e) {
        if (live) {
          setError((e as Error).message);
        }
        return;
      }
      timer = window.setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [jobId]);

  const problems: { [k: string]: string } = {};
  const overrides: { [k: string]: JSONValue } = {};
  const floats = new Set<string>();
  for (const name of names) {
    try {
      const value = parseEdited(texts[name], params[name]);
      if (!sameValue(value, params[name])) {
        overrides[name] = value;
      }
      // Keep Python's float type: typed as a float, or the original was one.
      const original = params[name];
      if (
        /[.eE]/.test(texts[name]) ||
        (typeof original === 'number' && !Number.isInteger(original))
      ) {
        floats.add(name);
      }
    } catch (e) {
      problems[name] = (e as Error).message;
    }
  }
  const blocked = drift.value?.parameters ?? {};
  for (const name of Object.keys(overrides)) {
    if (blocked[name] && !blocked[name].overridable) {
      problems[name] = `is not overridable: ${blocked[name].reason ?? ''}`;
    }
  }
  const repeat = Number(repeatText);
  const repeatValid = Number.isInteger(repeat) && repeat >= 1 && repeat <= 20;
  const valid = Object.keys(problems).length === 0 && repeatValid;

  const start = async (trust = false) => {
    setStarting(true);
    setError(null);
    try {
      setJobId(
        await startRerun(run.id, overrides, floats, undefined, trust, { repeat, recordedModules })
      );
      setTrustRequest(null);
    } catch (e) {
      if (!trust && needsTrust(e)) {
        const recordedBy = `${run.user ?? '?'}@${run.host ?? '?'}`;
        setTrustRequest({ reason: (e as Error).message, recordedBy, cells: null });
        getRun(run.id).then(
          full => setTrustRequest(t => t && { ...t, cells: full.cells ?? [] }),
          err => setError((err as Error).message)
        );
      } else {
        setError((e as Error).message);
      }
    } finally {
      setStarting(false);
    }
  };

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
  const finished = state === 'done' || state === 'error' || state === 'cancelled';
  const progress = job?.progress;

  return (
    <div className="nbtrace-Rerun">
      <h2 id={`${id}-title`} className="nbtrace-Rerun-title">
        Re-execute {run.name}
      </h2>
      <p className="nbtrace-muted">
        Replays the run's recorded cells in a fresh kernel, with these parameters, and compares the
        result with the original.
      </p>
      <fieldset className="nbtrace-Rerun-params" disabled={!!jobId}>
        <legend>Parameters</legend>
        {names.length === 0 && <div className="nbtrace-muted">The run logged no parameters.</div>}
        {names.map((name, k) => {
          const inputId = `${id}-p-${k}`;
          const edited = name in overrides;
          const fixed = blocked[name] && !blocked[name].overridable;
          return (
            <div
              key={name}
              className={'nbtrace-Rerun-param' + (edited ? ' nbtrace-mod-edited' : '')}
            >
              <label htmlFor={inputId}>{name}</label>
              <input
                id={inputId}
                ref={k === 0 ? first : undefined}
                className="jp-mod-styled"
                value={texts[name]}
                spellCheck={false}
                readOnly={!!fixed || mlflowOnly.has(name)}
                title={
                  fixed
                    ? `not overridable: ${blocked[name].reason ?? ''}`
                    : mlflowOnly.has(name)
                      ? 'logged by MLflow (autolog): not overridable; read it with nbtrace.log_param to edit it'
                      : undefined
                }
                aria-invalid={problems[name] ? true : undefined}
                aria-describedby={problems[name] ? `${inputId}-err` : undefined}
                onChange={e => {
                  const value = e.currentTarget.value;
                  setTexts(t => ({ ...t, [name]: value }));
                }}
              />
              <span className="nbtrace-muted nbtrace-Rerun-original" title="original value">
                {edited
                  ? `was ${formatValue(params[name])}`
                  : mlflowOnly.has(name) && !fixed
                    ? 'not overridable'
                    : ''}
              </span>
              {problems[name] && (
                <span id={`${inputId}-err`} className="nbtrace-error">
                  {name} {problems[name]}
                </span>
              )}
              {fixed && !problems[name] && (
                <span className="nbtrace-muted nbtrace-Rerun-fixed">
                  not overridable: {blocked[name].reason ?? ''}
                </span>
              )}
            </div>
          );
        })}
      </fieldset>
      <fieldset className="nbtrace-Rerun-options" disabled={!!jobId}>
        <legend>Replay</legend>
        <label>
          <input
            type="checkbox"
            checked={recordedModules}
            onChange={e => setRecordedModules(e.currentTarget.checked)}
          />{' '}
          Use recorded modules
        </label>
        <label htmlFor={`${id}-repeat`}>Repeat</label>
        <input
          id={`${id}-repeat`}
          className="jp-mod-styled nbtrace-Rerun-repeat"
          type="number"
          min={1}
          max={20}
          value={repeatText}
          aria-invalid={repeatValid ? undefined : true}
          onChange={e => setRepeatText(e.currentTarget.value)}
        />
        {!repeatValid && <span className="nbtrace-error">Repeat takes 1 to 20</span>}
      </fieldset>
      <section className="nbtrace-Rerun-drift" aria-label="Environment drift">
        <h3>Environment</h3>
        {drift.loading && <div className="nbtrace-muted">Checking the environment…</div>}
        {drift.error && (
          <div className="nbtrace-error">Drift check failed: {drift.error.message}</div>
        )}
        {drift.value && <DriftView drift={drift.value} />}
      </section>
      {state && (
        <section className="nbtrace-Rerun-progress" aria-live="polite" aria-label="Progress">
          {!finished && (
            <>
              <div>
                {state === 'queued'
                  ? 'Queued…'
                  : progress && progress.total
                    ? `Running cell ${Math.min(progress.done + 1, progress.total)} of ${progress.total}`
                    : 'Starting a kernel…'}
              </div>
              <progress
                max={progress?.total || 1}
                value={progress?.total ? progress.done : undefined}
                aria-label="Re-execution progress"
              />
            </>
          )}
          {state === 'cancelled' && <div className="nbtrace-warn">Cancelled.</div>}
          {state === 'error' && !job?.verdict && (
            <div className="nbtrace-error">
              Re-execution failed: {job?.error ?? 'unknown error'}
            </div>
          )}
          {job?.verdict && <VerdictDetails verdict={job.verdict} />}
          {finished && job?.run && (
            <div className="nbtrace-muted">
              New run <code>{job.run}</code> is selected in the sidebar.
            </div>
          )}
        </section>
      )}
      {trustRequest && !jobId && (
        <TrustConfirmation
          request={trustRequest}
          starting={starting}
          onTrust={() => void start(true)}
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
              disabled={!valid || starting || trustRequest !== null}
              onClick={() => void start()}
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
