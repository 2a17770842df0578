/**
 * Editable name, tags and note of a run (PATCH runs/{id}).
 */
import React, { useEffect, useState } from 'react';

import { patchRun } from '../../api';
import { formatValue } from '../../format';
import type { IRun } from '../../types';
import { Section } from './common';

/** Props of {@link TagsNoteSection}. */
export interface ITagsNoteProps {
  run: IRun;
  onChanged: (run: IRun) => void;
}

/** Tags and note, editable. */
export function TagsNoteSection(props: ITagsNoteProps): JSX.Element {
  const { run, onChanged } = props;
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [note, setNote] = useState(run.note ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setNote(run.note ?? ''), [run.id, run.note]);

  const patch = async (body: Parameters<typeof patchRun>[1]) => {
    setBusy(true);
    setError(null);
    try {
      onChanged(await patchRun(run.id, body));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const tags = run.tags ?? {};
  return (
    <Section title="Tags and note" className="nbtrace-TagsSection">
      <ul className="nbtrace-Tags" aria-label="Tags">
        {Object.keys(tags)
          .sort()
          .map(k => (
            <li key={k} className="nbtrace-Tag">
              <span className="nbtrace-Tag-key">{k}</span>
              <span className="nbtrace-Tag-value">{formatValue(tags[k])}</span>
              <button
                className="nbtrace-Tag-remove"
                aria-label={`Remove tag ${k}`}
                title={`Remove tag ${k}`}
                disabled={busy}
                onClick={() => void patch({ tags: { [k]: null } })}
              >
                ×
              </button>
            </li>
          ))}
      </ul>
      <form
        className="nbtrace-TagForm"
        onSubmit={event => {
          event.preventDefault();
          if (key.trim()) {
            void patch({ tags: { [key.trim()]: value } }).then(() => {
              setKey('');
              setValue('');
            });
          }
        }}
      >
        <input
          className="jp-mod-styled"
          aria-label="Tag name"
          placeholder="tag"
          value={key}
          onChange={e => setKey(e.currentTarget.value)}
        />
        <input
          className="jp-mod-styled"
          aria-label="Tag value"
          placeholder="value"
          value={value}
          onChange={e => setValue(e.currentTarget.value)}
        />
        <button className="jp-Button jp-mod-styled jp-mod-reject" type="submit" disabled={busy}>
          Add tag
        </button>
      </form>
      <label className="nbtrace-NoteLabel">
        Note
        <textarea
          className="jp-mod-styled nbtrace-Note"
          value={note}
          rows={3}
          onChange={e => setNote(e.currentTarget.value)}
        />
      </label>
      <button
        className="jp-Button jp-mod-styled jp-mod-reject"
        disabled={busy || note === (run.note ?? '')}
        onClick={() => void patch({ note })}
      >
        Save note
      </button>
      {error && (
        <div className="nbtrace-error" role="alert">
          {error}
        </div>
      )}
    </Section>
  );
}
