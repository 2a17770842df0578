/**
 * The filter box: takes the query language, applies it on Enter, and shows the server's
 * error inline with a marker under the position it names.
 */
import React, { useId, useState } from 'react';

import { useSignals } from '../hooks';
import { RunsModel } from '../model';

/** Example shown as placeholder. */
const PLACEHOLDER = 'params.alpha > 0.1 and metrics.mse < 3000';

/** The 1-based position named by a server error such as `bad filter at position 14: ...`. */
export function errorPosition(message: string): number | null {
  const match = /position (\d+)/i.exec(message);
  return match ? parseInt(match[1], 10) : null;
}

/** Props of {@link FilterBar}. */
export interface IFilterBarProps {
  model: RunsModel;
}

/** The `Filter runs` search box. */
export function FilterBar(props: IFilterBarProps): JSX.Element {
  const { model } = props;
  useSignals(model.changed);
  const [text, setText] = useState(model.filter);
  const [applied, setApplied] = useState(model.filter);
  const id = useId();

  // Follow the model when it is restored from the state database (state adjusted while
  // rendering, as React's docs advise, rather than in an effect).
  const [seen, setSeen] = useState(model.filter);
  if (model.filter !== seen) {
    setSeen(model.filter);
    if (model.filter !== applied) {
      setApplied(model.filter);
      setText(model.filter);
    }
  }

  const apply = (value: string) => {
    setApplied(value.trim());
    model.setFilter(value);
  };

  const error = model.filterError;
  const position = error ? errorPosition(error) : null;
  const errorId = `${id}-error`;

  return (
    <div className="nbtrace-FilterBar">
      <div className="nbtrace-FilterBar-row">
        <input
          type="search"
          className="nbtrace-FilterBar-input jp-mod-styled"
          aria-label="Filter runs"
          placeholder={PLACEHOLDER}
          title="Query: params.X, metrics.X, tags.X, status, name, experiment, user, notebook, env.PKG with = != < <= > >= like, and/or, parentheses. Enter applies."
          value={text}
          spellCheck={false}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? errorId : undefined}
          onChange={event => {
            setText(event.currentTarget.value);
            if (event.currentTarget.value === '' && applied !== '') {
              apply('');
            }
          }}
          onKeyDown={event => {
            if (event.key === 'Enter') {
              apply(event.currentTarget.value);
            } else if (event.key === 'Escape') {
              setText(applied);
            }
          }}
        />
        {model.history.length > 0 && (
          <select
            className="nbtrace-select nbtrace-FilterBar-history"
            aria-label="Recent filters"
            title="Recent filters"
            value=""
            onChange={event => {
              const value = event.currentTarget.value;
              if (value) {
                setText(value);
                apply(value);
              }
            }}
          >
            <option value="">Recent</option>
            {model.history.map(f => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
        )}
      </div>
      {error && (
        <div className="nbtrace-FilterBar-error" id={errorId} role="alert">
          <div>{error}</div>
          {position !== null && (
            <pre className="nbtrace-FilterBar-caret" aria-hidden="true">
              {applied}
              {'\n'}
              {' '.repeat(Math.max(0, position - 1))}^
            </pre>
          )}
        </div>
      )}
    </div>
  );
}
