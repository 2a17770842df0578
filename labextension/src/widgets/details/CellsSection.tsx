/**
 * The recorded cells of a run in execution order, with their hashes.
 */
import React, { useState } from 'react';

import { shortHash } from '../../format';
import type { IRun } from '../../types';
import { Code, Section } from './common';

/** The code of a run, cell by cell. */
export function CellsSection(props: { run: IRun }): JSX.Element {
  const cells = [...(props.run.cells ?? [])].sort((a, b) => a.seq - b.seq);
  const [onlyRun, setOnlyRun] = useState(false);
  const shown = onlyRun ? cells.filter(c => c.in_run) : cells;
  return (
    <Section title={`Code (${cells.length} cells)`} className="nbtrace-CellsSection">
      <label className="nbtrace-inline">
        <input
          type="checkbox"
          checked={onlyRun}
          onChange={e => setOnlyRun(e.currentTarget.checked)}
        />{' '}
        Only cells of the run
      </label>
      {shown.length === 0 && <div className="nbtrace-muted">No cells recorded.</div>}
      <ol className="nbtrace-Cells" aria-label="Recorded cells">
        {shown.map(cell => (
          <li
            key={cell.seq}
            className={
              'nbtrace-Cell' +
              (cell.in_run ? ' nbtrace-mod-inRun' : ' nbtrace-mod-beforeRun') +
              (cell.error ? ' nbtrace-mod-error' : '')
            }
          >
            <div className="nbtrace-Cell-header">
              <span className="nbtrace-Cell-prompt">[{cell.execution_count ?? ' '}]</span>
              <span className="nbtrace-Cell-seq">#{cell.seq}</span>
              <code className="nbtrace-Cell-hash" title={`sha256 ${cell.sha256}`}>
                {shortHash(cell.sha256)}
              </code>
              {cell.in_run ? (
                <span className="nbtrace-Badge nbtrace-Badge-inRun">in run</span>
              ) : (
                <span className="nbtrace-Badge">before run</span>
              )}
              {cell.error && <span className="nbtrace-Badge nbtrace-Badge-error">error</span>}
            </div>
            <Code source={cell.source ?? ''} />
          </li>
        ))}
      </ol>
    </Section>
  );
}

// Artifacts have their own module; re-exported where the details view imports them from.
export { ArtifactsSection } from './ArtifactsSection';
