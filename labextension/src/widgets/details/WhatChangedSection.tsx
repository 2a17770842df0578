/**
 * "What changed since this run": the code cells of the notebook open now, compared by
 * sha256 with the notebook as saved when the run started.
 */
import type { INotebookTracker } from '@jupyterlab/notebook';
import React, { useEffect, useState } from 'react';

import { shortHash } from '../../format';
import { sameItems, useSignals, useStable } from '../../hooks';
import { currentCodeCells, diffCells, ICellChange, pickNotebook } from '../../notebook';
import type { IRun } from '../../types';
import { Code, Section } from './common';

interface IResult {
  path: string;
  changes: ICellChange[];
}

/** Props of {@link WhatChangedSection}. */
export interface IWhatChangedProps {
  run: IRun;
  tracker: INotebookTracker | null;
}

/** The differences, or a hint when no notebook is open. */
export function WhatChangedSection(props: IWhatChangedProps): JSX.Element | null {
  const { run, tracker } = props;
  const signals = tracker ? [tracker.currentChanged] : [];
  useSignals(...signals);
  const [result, setResult] = useState<IResult | null>(null);
  const [version, setVersion] = useState(0);
  // A reload of the run (every 2 s while it runs) brings the same cells: no new diff.
  const recorded = useStable(run.notebook?.cells ?? null, sameItems);
  const panel = tracker ? pickNotebook(tracker, run.notebook?.path ?? run.notebook_path) : null;

  useEffect(() => {
    let live = true;
    if (!panel || !recorded) {
      setResult(null);
      return;
    }
    void panel.context.ready.then(async () => {
      const cells = await currentCodeCells(panel);
      if (live) {
        setResult({ path: panel.context.path, changes: diffCells(recorded, cells) });
      }
    });
    return () => {
      live = false;
    };
  }, [panel, recorded, version]);

  // Byte-for-byte sources of recorded cells, by hash, to show what an edited cell was.
  const sources = new Map((run.cells ?? []).map(c => [c.sha256, c.source]));

  return (
    <Section title="What changed since this run" className="nbtrace-WhatChanged" open={false}>
      {!recorded ? (
        <div className="nbtrace-muted">The run did not record its notebook file.</div>
      ) : !panel ? (
        <div className="nbtrace-muted">Open a notebook to compare it with this run.</div>
      ) : (
        <>
          <div className="nbtrace-inline">
            Against <strong>{result?.path ?? panel.context.path}</strong>{' '}
            <button
              className="jp-Button jp-mod-styled jp-mod-minimal nbtrace-link"
              onClick={() => setVersion(v => v + 1)}
            >
              Recheck
            </button>
          </div>
          {result && result.changes.length === 0 && (
            <div className="nbtrace-ok">No code cell changed since this run.</div>
          )}
          {result && result.changes.length > 0 && (
            <ul className="nbtrace-Changes" aria-label="Changed cells">
              {result.changes.map((change, k) => (
                <li key={k} className={`nbtrace-Change nbtrace-Change-${change.kind}`}>
                  <div>
                    <span className="nbtrace-Badge">{change.kind}</span>{' '}
                    {change.current
                      ? `cell ${change.current.index + 1} of the open notebook`
                      : `code cell ${(change.recordedIndex ?? 0) + 1} of the recorded notebook`}
                    {change.recordedHash && (
                      <code className="nbtrace-muted"> was {shortHash(change.recordedHash)}</code>
                    )}
                  </div>
                  {change.kind === 'edited' && sources.has(change.recordedHash ?? '') && (
                    <details>
                      <summary>Source at run time</summary>
                      <Code source={sources.get(change.recordedHash ?? '') ?? ''} />
                    </details>
                  )}
                  {change.kind === 'removed' && sources.has(change.recordedHash ?? '') && (
                    <Code source={sources.get(change.recordedHash ?? '') ?? ''} />
                  )}
                  {change.current && <Code source={change.current.source} />}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </Section>
  );
}
