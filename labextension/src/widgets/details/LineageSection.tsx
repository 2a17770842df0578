/**
 * Lineage of a run: the run it re-executes (with its own verdict) and its re-executions.
 */
import React from 'react';

import { formatTime, formatValue } from '../../format';
import type { IRun, IVerdict } from '../../types';
import { VerdictExplanation } from '../VerdictView';
import { Section, VerdictBadge } from './common';

/** Metric deltas of a verdict. */
export function VerdictDetails(props: { verdict: IVerdict }): JSX.Element {
  const { verdict } = props;
  const metrics = Object.entries(verdict.metrics ?? {});
  return (
    <div className="nbtrace-Verdict">
      <div className="nbtrace-Verdict-status">
        Verdict: <VerdictBadge status={verdict.status} />
        {verdict.code_matches === false && (
          <span className="nbtrace-muted"> (code differs from the original)</span>
        )}
      </div>
      {verdict.error && <pre className="nbtrace-code nbtrace-error">{verdict.error}</pre>}
      {metrics.length > 0 && (
        <table className="nbtrace-Grid" aria-label="Metric deltas">
          <thead>
            <tr>
              <th>metric</th>
              <th className="nbtrace-num">original</th>
              <th className="nbtrace-num">new</th>
              <th className="nbtrace-num">delta</th>
            </tr>
          </thead>
          <tbody>
            {metrics.map(([k, m]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td className="nbtrace-num">{formatValue(m.original)}</td>
                <td className="nbtrace-num">{formatValue(m.new)}</td>
                <td className="nbtrace-num">{formatValue(m.delta)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <VerdictExplanation verdict={verdict} />
    </div>
  );
}

/** Props of {@link LineageSection}. */
export interface ILineageProps {
  run: IRun;
  onSelect: (id: string) => void;
}

/** Parent and re-executions. */
export function LineageSection(props: ILineageProps): JSX.Element | null {
  const { run, onSelect } = props;
  const children = run.children ?? [];
  if (!run.parent && children.length === 0) {
    return null;
  }
  return (
    <Section title="Lineage" className="nbtrace-LineageSection">
      {run.parent && (
        <div className="nbtrace-Lineage-parent">
          Re-execution of{' '}
          <button className="nbtrace-link" onClick={() => onSelect(run.parent!)}>
            {run.parent}
          </button>
          {run.verdict && <VerdictDetails verdict={run.verdict} />}
        </div>
      )}
      {children.length > 0 && (
        <>
          <h4>Re-executions</h4>
          <ul className="nbtrace-Lineage-children">
            {children.map(child => (
              <li key={child.id}>
                <button className="nbtrace-link" onClick={() => onSelect(child.id)}>
                  {child.name}
                </button>{' '}
                <span className="nbtrace-muted">{formatTime(child.started_at)}</span>{' '}
                <VerdictBadge
                  status={child.verdict?.status ?? child.verdict_status ?? child.status}
                />
              </li>
            ))}
          </ul>
        </>
      )}
    </Section>
  );
}
