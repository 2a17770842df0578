/**
 * The artifacts and inputs of a run, with previews: images inline (raster as a `data:` URL,
 * SVG rasterised), text and JSON as text, CSV as a table of its first rows, a notebook
 * read-only through rendermime. See preview.ts for why none of them gets the Lab's origin.
 */
import React, { useEffect, useState } from 'react';

import { downloadArtifact, fetchArtifact } from '../../api';
import { formatBytes, shortHash } from '../../format';
import {
  CSV_ROWS,
  decodeText,
  formatJSON,
  parseCSV,
  PREVIEW_LIMIT,
  PreviewKind,
  previewKind,
  rasterDataURL,
  rasteriseSVG
} from '../../preview';
import type { IRun } from '../../types';
import { NotebookPreview } from './NotebookPreview';
import { Code, Section } from './common';

/** What a loaded preview shows. */
type Loaded =
  | { kind: 'image'; url: string }
  | { kind: 'text'; text: string; truncated: boolean }
  | { kind: 'csv'; rows: string[][] }
  | { kind: 'notebook'; notebook: any };

async function loadPreview(runId: string, name: string, kind: PreviewKind): Promise<Loaded> {
  const { bytes } = await fetchArtifact(runId, name);
  switch (kind) {
    case 'image':
      return { kind: 'image', url: rasterDataURL(name, bytes) };
    case 'svg':
      return { kind: 'image', url: await rasteriseSVG(bytes) };
    case 'json': {
      const { text, truncated } = decodeText(bytes);
      return { kind: 'text', text: truncated ? text : formatJSON(text).text, truncated };
    }
    case 'csv': {
      const delimiter = /\.tsv$/i.test(name) ? '\t' : ',';
      return { kind: 'csv', rows: parseCSV(decodeText(bytes).text, delimiter) };
    }
    case 'notebook':
      return { kind: 'notebook', notebook: JSON.parse(decodeText(bytes).text) };
    default:
      return { kind: 'text', ...decodeText(bytes) };
  }
}

/** The first rows of a CSV artifact as a table. */
function CsvTable(props: { rows: string[][]; name: string }): JSX.Element {
  const [header, ...body] = props.rows;
  if (!header) {
    return <div className="nbtrace-muted">Empty file.</div>;
  }
  return (
    <div className="nbtrace-Scroll-x">
      <table className="nbtrace-Grid nbtrace-CsvPreview" aria-label={`Preview of ${props.name}`}>
        <thead>
          <tr>
            {header.map((h, k) => (
              <th key={k} scope="col" title={h}>
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {body.map((row, r) => (
            <tr key={r}>
              {header.map((_, k) => (
                <td key={k} title={row[k] ?? ''}>
                  {row[k] ?? ''}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {body.length >= CSV_ROWS && (
        <div className="nbtrace-muted">First {CSV_ROWS} rows; download the file for the rest.</div>
      )}
    </div>
  );
}

function PreviewBody(props: { loaded: Loaded; name: string }): JSX.Element {
  const { loaded, name } = props;
  switch (loaded.kind) {
    case 'image':
      return <img src={loaded.url} alt={name} className="nbtrace-Artifact-image" />;
    case 'csv':
      return <CsvTable rows={loaded.rows} name={name} />;
    case 'notebook':
      return <NotebookPreview notebook={loaded.notebook} label={`Preview of ${name}`} />;
    default:
      return (
        <div role="region" aria-label={`Preview of ${name}`}>
          <Code source={loaded.text} className="nbtrace-TextPreview" />
          {loaded.truncated && <div className="nbtrace-muted">Cut here; download for all.</div>}
        </div>
      );
  }
}

/** One artifact: its preview (images at once, the others on demand) and a download button. */
function Artifact(props: { runId: string; name: string; size?: number }): JSX.Element {
  const { runId, name, size } = props;
  const kind = previewKind(name);
  const inline = kind === 'image' || kind === 'svg';
  const previewable = kind !== 'none' && (size === undefined || size <= PREVIEW_LIMIT);
  const [open, setOpen] = useState(inline || kind === 'csv');
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!open || !previewable) {
      return;
    }
    let live = true;
    setError(null);
    loadPreview(runId, name, kind).then(
      l => live && setLoaded(l),
      e => live && setError(`Cannot preview: ${e?.message ?? e}`)
    );
    return () => {
      live = false;
    };
  }, [runId, name, kind, open, previewable]);

  const download = () => downloadArtifact(runId, name).catch(e => setError((e as Error).message));

  return (
    <figure className="nbtrace-Artifact">
      {open && loaded && <PreviewBody loaded={loaded} name={name} />}
      <figcaption>
        {name} <span className="nbtrace-muted">{formatBytes(size)}</span>{' '}
        {previewable && !inline && (
          <button
            className="jp-Button jp-mod-styled jp-mod-minimal nbtrace-link"
            aria-expanded={open}
            aria-label={`${open ? 'Hide' : 'Preview'} ${name}`}
            onClick={() => setOpen(!open)}
          >
            {open ? 'Hide' : 'Preview'}
          </button>
        )}
        <button
          className="jp-Button jp-mod-styled jp-mod-minimal nbtrace-link"
          aria-label={`Download ${name}`}
          onClick={() => void download()}
        >
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
