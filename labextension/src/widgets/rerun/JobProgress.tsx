/**
 * The re-execution's progress (queued, the cell running), then how it ended: cancelled, failed,
 * or the verdict, and the new run.
 */
import React from 'react';

import type { IJob } from '../../types';
import { VerdictDetails } from '../details/LineageSection';

/** Whether a job state is final. */
export function jobOver(state: string | null | undefined): boolean {
  return state === 'done' || state === 'error' || state === 'cancelled';
}

/** The progress section; `state` is the job's, or `queued` before its first poll. */
export function JobProgress(props: { job: IJob | null; state: string }): JSX.Element {
  const { job, state } = props;
  const finished = jobOver(state);
  const progress = job?.progress;
  return (
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
        <div className="nbtrace-error">Re-execution failed: {job?.error ?? 'unknown error'}</div>
      )}
      {job?.verdict && <VerdictDetails verdict={job.verdict} />}
      {finished && job?.run && (
        <div className="nbtrace-muted">
          New run <code>{job.run}</code> is selected in the sidebar.
        </div>
      )}
    </section>
  );
}
