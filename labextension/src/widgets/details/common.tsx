/**
 * Building blocks of the details and compare views.
 */
import React from 'react';

import { lineDiff } from '../../diff';
import { formatValue } from '../../format';
import type { JSONValue } from '../../types';

/** A labelled drop-down choosing one key (a metric or parameter name) for a chart. */
export function KeyPicker(props: {
  label: string;
  keys: string[];
  value: string;
  onChange: (key: string) => void;
}): JSX.Element {
  return (
    <label className="nbtrace-inline">
      {props.label}{' '}
      <select
        className="nbtrace-select"
        value={props.value}
        onChange={e => props.onChange(e.currentTarget.value)}
      >
        {props.keys.map(k => (
          <option key={k} value={k}>
            {k}
          </option>
        ))}
      </select>
    </label>
  );
}

/** A collapsible section with a heading. */
export function Section(props: {
  title: string;
  open?: boolean;
  className?: string;
  children: React.ReactNode;
  extra?: React.ReactNode;
}): JSX.Element {
  return (
    <details className={`nbtrace-Section ${props.className ?? ''}`} open={props.open ?? true}>
      <summary>
        <h3 className="nbtrace-Section-title">{props.title}</h3>
        {props.extra}
      </summary>
      <div className="nbtrace-Section-body">{props.children}</div>
    </details>
  );
}

/** A two-column table of names and values. */
export function KeyValueTable(props: {
  rows: [string, React.ReactNode][];
  label: string;
  empty?: string;
}): JSX.Element {
  if (props.rows.length === 0) {
    return <div className="nbtrace-muted">{props.empty ?? 'None.'}</div>;
  }
  return (
    <table className="nbtrace-KV" aria-label={props.label}>
      <tbody>
        {props.rows.map(([key, value]) => (
          <tr key={key}>
            <th scope="row" title={key}>
              {key}
            </th>
            <td>{value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A JSON value as text. */
export function Value(props: { value: JSONValue | undefined }): JSX.Element {
  const text = formatValue(props.value);
  return (
    <span className="nbtrace-value" title={text}>
      {text}
    </span>
  );
}

/** A verdict status as a badge; the status word is part of the text. */
export function VerdictBadge(props: { status: string | null | undefined }): JSX.Element | null {
  const status = props.status;
  if (!status) {
    return null;
  }
  const known = ['reproduced', 'within_tolerance', 'diverged', 'failed', 'within_noise'].includes(
    status
  );
  return (
    <span className={`nbtrace-verdict nbtrace-verdict-${known ? status : 'other'}`}>{status}</span>
  );
}

/** Source code, as text. */
export function Code(props: { source: string; className?: string }): JSX.Element {
  return <pre className={`nbtrace-code ${props.className ?? ''}`}>{props.source}</pre>;
}

/** A unified diff, with added and removed lines colored. */
export function UnifiedDiff(props: { diff: string }): JSX.Element {
  const lines = props.diff.replace(/\n$/, '').split('\n');
  return (
    <pre className="nbtrace-code nbtrace-diffText">
      {lines.map((line, k) => {
        const kind =
          line.startsWith('+++') || line.startsWith('---')
            ? 'file'
            : line.startsWith('@@')
              ? 'hunk'
              : line.startsWith('+')
                ? 'add'
                : line.startsWith('-')
                  ? 'del'
                  : 'ctx';
        return (
          <span key={k} className={`nbtrace-diffLine nbtrace-diffLine-${kind}`}>
            {line}
            {'\n'}
          </span>
        );
      })}
    </pre>
  );
}

/** Two versions of a cell's source, line by line. */
export function SourceDiff(props: { a: string; b: string }): JSX.Element {
  return (
    <pre className="nbtrace-code nbtrace-diffText">
      {lineDiff(props.a, props.b).map((line, k) => (
        <span key={k} className={`nbtrace-diffLine nbtrace-diffLine-${line.kind}`}>
          {line.kind === 'add' ? '+ ' : line.kind === 'del' ? '- ' : '  '}
          {line.text}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}
