/**
 * A notebook artifact (the executed notebook of a re-execution) shown read-only through
 * JupyterLab's own rendermime, as JupyterLab shows an untrusted notebook: every output is
 * rendered untrusted (HTML and Markdown sanitized, no script, no JavaScript output), and only
 * the passive types of {@link SAFE_TYPES} are rendered at all. Code is React text.
 */
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';
import React, { useEffect, useRef } from 'react';

import { Code } from './common';

const ESC = String.fromCharCode(27);

/** Text without its ANSI colour codes (`ESC[...m`), as tracebacks carry them. */
export function stripAnsi(text: string): string {
  const [head, ...rest] = text.split(ESC);
  const kept = rest.map(part => {
    const code = /^\[[0-9;]*m/.exec(part);
    return code ? part.slice(code[0].length) : ESC + part;
  });
  return head + kept.join('');
}

let registry: IRenderMimeRegistry | null = null;

/** Give the previews JupyterLab's rendermime registry (called once at activation). */
export function setRenderMime(rendermime: IRenderMimeRegistry | null): void {
  registry = rendermime;
}

/**
 * Output types rendered, best first. Untrusted SVG is not rendered by JupyterLab (it shows a
 * notice), so it is left out, as are JavaScript and widget types.
 */
export const SAFE_TYPES = [
  'image/png',
  'image/jpeg',
  'image/gif',
  'text/markdown',
  'text/latex',
  'text/html',
  'text/plain'
];

/** Cells shown at most. */
const MAX_CELLS = 200;

type Bundle = { [mime: string]: unknown };

function joinSource(source: unknown): string {
  return Array.isArray(source) ? source.join('') : String(source ?? '');
}

/** One mime bundle rendered untrusted by rendermime (or as text without a registry). */
function MimeOutput(props: { bundle: Bundle }): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const mime = SAFE_TYPES.find(t => t in props.bundle);
  useEffect(() => {
    const node = host.current;
    if (!node || !mime || !registry || !registry.mimeTypes.includes(mime)) {
      return;
    }
    const data: { [key: string]: any } = { [mime]: props.bundle[mime] };
    const model = registry.createModel({ data, trusted: false });
    const renderer = registry.createRenderer(mime);
    let disposed = false;
    void renderer.renderModel(model).then(() => {
      if (!disposed) {
        Widget.attach(renderer, node);
      }
    });
    return () => {
      disposed = true;
      if (renderer.isAttached) {
        Widget.detach(renderer);
      }
      renderer.dispose();
    };
  }, [props.bundle, mime]);
  if (!mime) {
    return <div className="nbtrace-muted">(output of type {Object.keys(props.bundle)[0]})</div>;
  }
  if (!registry || !registry.mimeTypes.includes(mime)) {
    return <Code source={joinSource(props.bundle['text/plain'] ?? '')} />;
  }
  return <div ref={host} className="nbtrace-NotebookPreview-output" />;
}

function Output(props: { output: any }): JSX.Element {
  const output = props.output ?? {};
  if (output.output_type === 'stream') {
    return (
      <Code
        source={joinSource(output.text)}
        className={output.name === 'stderr' ? 'nbtrace-stderr' : ''}
      />
    );
  }
  if (output.output_type === 'error') {
    // Tracebacks carry ANSI colour codes: shown without them, as text.
    const text = stripAnsi((output.traceback ?? []).join('\n'));
    return <Code source={text || `${output.ename}: ${output.evalue}`} className="nbtrace-stderr" />;
  }
  return <MimeOutput bundle={output.data ?? {}} />;
}

/** A notebook document, read-only. */
export function NotebookPreview(props: { notebook: any; label: string }): JSX.Element {
  const cells: any[] = Array.isArray(props.notebook?.cells) ? props.notebook.cells : [];
  return (
    <ol className="nbtrace-NotebookPreview" aria-label={props.label}>
      {cells.slice(0, MAX_CELLS).map((cell, k) => (
        <li key={k} className={`nbtrace-NotebookPreview-cell nbtrace-mod-${cell.cell_type}`}>
          {cell.cell_type === 'markdown' ? (
            <MimeOutput bundle={{ 'text/markdown': joinSource(cell.source) }} />
          ) : (
            <>
              <div className="nbtrace-Cell-header">
                <span className="nbtrace-Cell-prompt">[{cell.execution_count ?? ' '}]</span>
              </div>
              <Code source={joinSource(cell.source)} />
              {(cell.outputs ?? []).map((o: any, j: number) => (
                <Output key={j} output={o} />
              ))}
            </>
          )}
        </li>
      ))}
      {cells.length > MAX_CELLS && (
        <li className="nbtrace-muted">{cells.length - MAX_CELLS} more cells not shown.</li>
      )}
    </ol>
  );
}
