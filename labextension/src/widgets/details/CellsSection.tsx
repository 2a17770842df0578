/**
 * The recorded cells of a run in execution order, with their hashes, and the inline
 * image artifacts.
 */
import React, { useEffect, useState } from 'react';

import { artifactObjectURL } from '../../api';
import { formatBytes, shortHash } from '../../format';
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

const IMAGE = /\.(png|jpe?g|gif|webp|bmp|svg)$/i;

/** One artifact: an image inline, or a download button. */
function Artifact(props: { runId: string; name: string; size?: number }): JSX.Element {
  const { runId, name } = props;
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const image = IMAGE.test(name);
  useEffect(() => {
    if (!image) {
      return;
    }
    let live = true;
    let made: string | null = null;
    artifactObjectURL(runId, name, true).then(
      u => {
        made = u;
        if (live) {
          setUrl(u);
        } else {
          URL.revokeObjectURL(u);
        }
      },
      e => live && setError(e.message)
    );
    return () => {
      live = false;
      if (made) {
        URL.revokeObjectURL(made);
      }
    };
  }, [runId, name, image]);

  const download = async () => {
    try {
      const u = await artifactObjectURL(runId, name);
      const a = document.createElement('a');
      a.href = u;
      a.download = name.split('/').pop() ?? name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(u), 1000);
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <figure className="nbtrace-Artifact">
      {image && url && <img src={url} alt={name} className="nbtrace-Artifact-image" />}
      <figcaption>
        {name} <span className="nbtrace-muted">{formatBytes(props.size)}</span>{' '}
        <button className="jp-Button jp-mod-styled jp-mod-minimal nbtrace-link" onClick={download}>
          Download
        </button>
      </figcaption>
      {error && <div className="nbtrace-error">{error}</div>}
    </figure>
  );
}

/** Artifacts and inputs of a run. */
export function ArtifactsSection(props: { run: IRun }): JSX.Element | null {
  const artifacts = props.run.artifacts ?? [];
  const inputs = props.run.inputs ?? [];
  if (artifacts.length === 0 && inputs.length === 0) {
    return null;
  }
  return (
    <Section title="Artifacts and inputs" className="nbtrace-ArtifactsSection">
      {artifacts.map(a => (
        <Artifact key={a.name} runId={props.run.id} name={a.name} size={a.size} />
      ))}
      {inputs.length > 0 && (
        <>
          <h4>Inputs</h4>
          <ul className="nbtrace-Inputs">
            {inputs.map(i => (
              <li key={i.path}>
                <span>{i.path}</span> <code title={i.sha256}>{shortHash(i.sha256)}</code>{' '}
                <span className="nbtrace-muted">{formatBytes(i.size)}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </Section>
  );
}
