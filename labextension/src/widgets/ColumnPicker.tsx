/**
 * Choose the param / metric / tag columns of the runs table (remembered in the settings).
 */
import React, { useState } from 'react';

import { RunsModel } from '../model';

/** Props of {@link ColumnPicker}. */
export interface IColumnPickerProps {
  model: RunsModel;
  onClose: () => void;
}

/** A list of checkboxes, one per known key, plus a box to add any key. */
export function ColumnPicker(props: IColumnPickerProps): JSX.Element {
  const { model, onClose } = props;
  const [extra, setExtra] = useState('');
  const chosen = new Set(model.columns);
  const available = model.availableColumns();

  const toggle = (key: string, on: boolean) => {
    const next = model.columns.filter(c => c !== key);
    if (on) {
      next.push(key);
    }
    model.setColumns(next);
  };

  const add = () => {
    const key = extra.trim();
    if (/^(params|metrics|tags)\.\S+$/.test(key) && !chosen.has(key)) {
      model.setColumns([...model.columns, key]);
      setExtra('');
    }
  };

  return (
    <div
      className="nbtrace-ColumnPicker"
      role="group"
      aria-label="Table columns"
      onKeyDown={event => {
        if (event.key === 'Escape') {
          onClose();
        }
      }}
    >
      {available.length === 0 && <div className="nbtrace-muted">No params or metrics yet.</div>}
      <ul>
        {available.map(key => (
          <li key={key}>
            <label>
              <input
                type="checkbox"
                checked={chosen.has(key)}
                onChange={event => toggle(key, event.currentTarget.checked)}
              />{' '}
              {key}
            </label>
          </li>
        ))}
      </ul>
      <div className="nbtrace-ColumnPicker-add">
        <input
          className="jp-mod-styled"
          aria-label="Add column"
          placeholder="metrics.name"
          value={extra}
          onChange={event => setExtra(event.currentTarget.value)}
          onKeyDown={event => event.key === 'Enter' && add()}
        />
        <button className="jp-Button jp-mod-styled jp-mod-reject" onClick={add}>
          Add
        </button>
        <button className="jp-Button jp-mod-styled jp-mod-accept" onClick={onClose}>
          Done
        </button>
      </div>
    </div>
  );
}
