/**
 * The "Sweep…" dialog of the run details: values per parameter (comma-separated), how many
 * kernels at once, then the sweep's progress and a way to see its runs together.
 *
 * Once the sweep is over, "Show the sweep's runs" filters the runs table to the sweep's tag
 * (`tags.sweep = '<id>'`), so the table, and the views of the filtered runs (the compare view's
 * params-vs-metric charts, the parallel coordinates view), show exactly the sweep.
 */
import React, { useEffect, useId, useRef, useState } from 'react';

import { ModalDialog } from './ModalDialog';

import { cancelSweep, getSweep, startSweep } from '../api';
import { parseValues, toText } from '../params';
import type { IRunSummary, ISweep, JSONValue } from '../types';
import { TrustConfirmation } from './rerun/TrustConfirmation';
import { usePolled } from './rerun/usePolled';
import { useTrustRequest } from './rerun/useTrustRequest';

/** Milliseconds between sweep polls. */
const POLL_MS = 1000;
/** The most parameter sets the server accepts in one sweep. */
const MAX_SETS = 256;

/** Props of {@link SweepForm}. */
export interface ISweepFormProps {
  run: IRunSummary;
  onClose: () => void;
  /** Show the sweep's runs together (filter the runs table by its tag). */
  onShowRuns: (sweep: ISweep) => void;
}

/** The content of the sweep dialog. */
export function SweepForm(props: ISweepFormProps): JSX.Element {
  const { run, onClose, onShowRuns } = props;
  const params = run.params ?? {};
  const names = Object.keys(params).sort();
  const id = useId();
  const [texts, setTexts] = useState<{ [k: string]: string }>(() =>
    Object.fromEntries(names.map(n => [n, toText(params[n])]))
  );
  const [parallel, setParallel] = useState('2');
  const [sweepId, setSweepId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);

  const grid: { [k: string]: JSONValue[] } = {};
  const problems: { [k: string]: string } = {};
  for (const n of names) {
    try {
      grid[n] = parseValues(texts[n] ?? '', params[n]);
    } catch (e) {
      problems[n] = (e as Error).message;
    }
  }
  // Only parameters given more than one value, or changed, are swept.
  const swept = Object.fromEntries(
    Object.entries(grid).filter(
      ([n, vs]) => vs.length > 1 || JSON.stringify(vs[0]) !== JSON.stringify(params[n])
    )
  );
  const count = Object.values(swept).reduce((acc, vs) => acc * vs.length, 1);
  const nParallel = Number(parallel);
  const parallelOk = Number.isInteger(nParallel) && nParallel >= 1;
  const trust = useTrustRequest(
    run,
    async withTrust => setSweepId(await startSweep(run.id, swept, nParallel, withTrust)),
    setError
  );
  const sweep = usePolled<ISweep>(sweepId, {
    get: getSweep,
    over: s => s.state !== 'queued' && s.state !== 'running',
    intervalMs: POLL_MS,
    onError: setError
  });
  const canStart =
    !sweepId &&
    !trust.starting &&
    trust.request === null &&
    Object.keys(problems).length === 0 &&
    Object.keys(swept).length > 0 &&
    count <= MAX_SETS &&
    parallelOk;

  const cancel = async () => {
    if (sweepId) {
      try {
        await cancelSweep(sweepId);
      } catch (e) {
        setError((e as Error).message);
      }
    }
  };
  const over = sweep !== null && sweep.state !== 'queued' && sweep.state !== 'running';

  return (
    <div className="nbtrace-Rerun">
      <h2 className="nbtrace-Rerun-title">Sweep {run.name}</h2>
      <p className="nbtrace-muted">
        Re-execute the run once per combination of the values below (comma-separated), each in a
        fresh kernel. The runs are children of this run, tagged with the sweep&apos;s id.
      </p>
      {names.length === 0 ? (
        <p>This run has no parameters to sweep.</p>
      ) : (
        <table className="nbtrace-Rerun-params">
          <tbody>
            {names.map((n, i) => (
              <tr key={n}>
                <th scope="row">
                  <label htmlFor={`${id}-${n}`}>{n}</label>
                </th>
                <td>
                  <input
                    id={`${id}-${n}`}
                    ref={i === 0 ? first : undefined}
                    className="jp-mod-styled"
                    aria-label={`Values of ${n}`}
                    aria-invalid={problems[n] ? true : undefined}
                    disabled={!!sweepId}
                    value={texts[n] ?? ''}
                    onChange={e => {
                      const value = e.currentTarget.value;
                      setTexts(t => ({ ...t, [n]: value }));
                    }}
                  />
                  {problems[n] && <div className="nbtrace-error">{problems[n]}</div>}
                </td>
              </tr>
            ))}
            <tr>
              <th scope="row">
                <label htmlFor={`${id}-parallel`}>kernels at once</label>
              </th>
              <td>
                <input
                  id={`${id}-parallel`}
                  className="jp-mod-styled"
                  type="number"
                  min={1}
                  aria-label="Kernels at once"
                  disabled={!!sweepId}
                  value={parallel}
                  onChange={e => setParallel(e.currentTarget.value)}
                />
              </td>
            </tr>
          </tbody>
        </table>
      )}
      {!sweepId && (
        <div className="nbtrace-muted" aria-live="polite">
          {Object.keys(swept).length === 0
            ? 'Give a parameter more than one value to sweep it.'
            : count > MAX_SETS
              ? `${count} runs: at most ${MAX_SETS} per sweep.`
              : `${count} run${count === 1 ? '' : 's'}.`}
        </div>
      )}
      {sweep && (
        <div role="status" aria-live="polite" className="nbtrace-SweepProgress">
          <progress max={sweep.progress.total} value={sweep.progress.done} /> {sweep.progress.done}{' '}
          of {sweep.progress.total} done
          {sweep.progress.running ? `, ${sweep.progress.running} running` : ''}
          {sweep.progress.failed ? `, ${sweep.progress.failed} failed` : ''} · sweep {sweep.state}
        </div>
      )}
      {trust.request && !sweepId && (
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
        {!sweepId && (
          <>
            <button className="jp-Button jp-mod-styled jp-mod-reject" onClick={onClose}>
              Cancel
            </button>
            <button
              className="jp-Button jp-mod-styled jp-mod-accept"
              disabled={!canStart}
              onClick={() => void trust.start()}
            >
              Start sweep
            </button>
          </>
        )}
        {sweepId && !over && (
          <button className="jp-Button jp-mod-styled jp-mod-warn" onClick={() => void cancel()}>
            Cancel sweep
          </button>
        )}
        {sweep && sweep.runs.length > 0 && (
          <button
            className="jp-Button jp-mod-styled"
            onClick={() => {
              onShowRuns(sweep);
              onClose();
            }}
          >
            Show the sweep&apos;s runs
          </button>
        )}
        {sweepId && (
          <button className="jp-Button jp-mod-styled jp-mod-accept" onClick={onClose}>
            Close
          </button>
        )}
      </div>
    </div>
  );
}

/** A modal dialog hosting {@link SweepForm} (the same modal rules as the re-execute one). */
export class SweepDialog extends ModalDialog {
  constructor(private readonly _options: Omit<ISweepFormProps, 'onClose'>) {
    super(`Sweep ${_options.run.name}`);
  }

  protected renderForm(close: () => void): JSX.Element {
    return <SweepForm {...this._options} onClose={close} />;
  }
}
