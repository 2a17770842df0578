/**
 * Nesting of a run: the run it is nested in (`start_run(nested=True)`, MLflow's parent run)
 * and the runs nested in it, as a tree one level at a time (select a run to go down).
 *
 * Separate from {@link LineageSection}: nesting groups runs (a sweep, folds of a cross
 * validation), lineage says which run a re-execution replays; a run can have both.
 */
import React from 'react';

import { formatTime } from '../../format';
import type { IRun } from '../../types';
import { Section, VerdictBadge } from './common';

/** Props of {@link NestingSection}. */
export interface INestingProps {
  run: IRun;
  onSelect: (id: string) => void;
}

/** "Nested in" and the nested runs. */
export function NestingSection(props: INestingProps): JSX.Element | null {
  const { run, onSelect } = props;
  const nested = run.nested_runs ?? [];
  if (!run.nested_in && nested.length === 0) {
    return null;
  }
  return (
    <Section title="Nested runs" className="nbtrace-NestingSection">
      {run.nested_in && (
        <div className="nbtrace-Nesting-parent">
          Nested in{' '}
          <button className="nbtrace-link" onClick={() => onSelect(run.nested_in!)}>
            {run.nested_in}
          </button>
        </div>
      )}
      {nested.length > 0 && (
        <ul className="nbtrace-Nesting-children" aria-label={`Runs nested in ${run.name}`}>
          {nested.map(child => (
            <li key={child.id}>
              <button className="nbtrace-link" onClick={() => onSelect(child.id)}>
                {child.name}
              </button>{' '}
              <span className="nbtrace-muted">{formatTime(child.started_at)}</span>{' '}
              <VerdictBadge status={child.verdict_status ?? child.status} />
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}
