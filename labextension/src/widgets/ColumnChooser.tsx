/**
 * The column chooser: a searchable popup listing every known param, metric and tag column,
 * ticked or not, plus a box to add a key no loaded run has yet.
 *
 * It is a widget attached to the document body, placed under its button and kept inside the
 * viewport (its list scrolls, its search box and buttons never leave the screen), so no panel
 * clips it however narrow the sidebar or however many runs and keys there are.
 */
import { InputGroup, ReactWidget } from '@jupyterlab/ui-components';
import { ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';
import React, { useEffect, useRef, useState } from 'react';

import { useSignals } from '../hooks';
import type { ColumnKey } from '../model';

/** What the chooser edits. */
export interface IColumnSource {
  /** Emitted when the keys or the choice change. */
  changed: ISignal<any, any>[];
  /** Every key that can be a column. */
  available(): ColumnKey[];
  /** The columns shown now, in order. */
  chosen(): ColumnKey[];
  setChosen(keys: ColumnKey[]): void;
  /** Go back to the default columns, when the table has defaults. */
  reset?: () => void;
}

/** Keys listed at most at once (the search narrows them). */
const MAX_LISTED = 2000;

function Chooser(props: { source: IColumnSource; onClose: () => void }): JSX.Element {
  const { source, onClose } = props;
  useSignals(...source.changed);
  const [search, setSearch] = useState('');
  const [extra, setExtra] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const chosen = source.chosen();
  const ticked = new Set(chosen);
  const all = [...new Set([...chosen, ...source.available()])];
  const needle = search.trim().toLowerCase();
  const matching = needle ? all.filter(k => k.toLowerCase().includes(needle)) : all;
  const shown = matching.slice(0, MAX_LISTED);

  const toggle = (key: string, on: boolean) => {
    const next = chosen.filter(c => c !== key);
    if (on) {
      next.push(key);
    }
    source.setChosen(next);
  };
  const add = () => {
    const key = extra.trim();
    if (/^(params|metrics|tags)\.\S+$/.test(key) && !ticked.has(key)) {
      source.setChosen([...chosen, key]);
      setExtra('');
    }
  };

  return (
    <div
      className="nbtrace-ColumnChooser-body"
      role="dialog"
      aria-label="Choose columns"
      onKeyDown={event => {
        if (event.key === 'Escape') {
          event.stopPropagation();
          onClose();
        }
      }}
    >
      <InputGroup
        type="search"
        aria-label="Search columns"
        placeholder={`Search ${all.length} columns`}
        value={search}
        inputRef={input}
        rightIcon="ui-components:search"
        onChange={event => setSearch(event.currentTarget.value)}
      />
      <div className="nbtrace-muted nbtrace-ColumnChooser-count" aria-live="polite">
        {ticked.size} shown · {matching.length} listed
      </div>
      <ul className="nbtrace-ColumnChooser-list" aria-label="Table columns">
        {shown.map(key => (
          <li key={key}>
            <label title={key}>
              <input
                type="checkbox"
                checked={ticked.has(key)}
                onChange={event => toggle(key, event.currentTarget.checked)}
              />{' '}
              {key}
            </label>
          </li>
        ))}
        {shown.length === 0 && (
          <li className="nbtrace-muted">
            {all.length ? 'No column matches.' : 'No params or metrics yet.'}
          </li>
        )}
      </ul>
      <div className="nbtrace-ColumnChooser-add">
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
      </div>
      <div className="nbtrace-ColumnChooser-buttons">
        {source.reset && (
          <button
            className="jp-Button jp-mod-styled jp-mod-reject"
            onClick={() => source.reset?.()}
          >
            Defaults
          </button>
        )}
        <span className="nbtrace-spacer" />
        <button className="jp-Button jp-mod-styled jp-mod-accept" onClick={onClose}>
          Done
        </button>
      </div>
    </div>
  );
}

/** Margin kept between the popup and the viewport's edges. */
const EDGE = 8;

/** Place the popup under (or, without room, over) its anchor, inside the viewport. */
function place(node: HTMLElement, anchor: HTMLElement): void {
  const box = anchor.getBoundingClientRect();
  const width = Math.min(380, window.innerWidth - 2 * EDGE);
  const height = Math.min(520, window.innerHeight - 2 * EDGE);
  const left = Math.min(Math.max(EDGE, box.right - width), window.innerWidth - width - EDGE);
  const below = window.innerHeight - box.bottom - EDGE;
  const top = below >= Math.min(height, 320) ? box.bottom + 2 : Math.max(EDGE, box.top - height);
  node.style.left = `${Math.max(EDGE, left)}px`;
  node.style.top = `${top}px`;
  node.style.width = `${width}px`;
  node.style.maxHeight = `${Math.min(height, window.innerHeight - top - EDGE)}px`;
}

/**
 * Open the chooser under `anchor`.
 *
 * @returns a function closing it (also closed by Done, Escape and a click elsewhere)
 */
export function openColumnChooser(
  anchor: HTMLElement,
  source: IColumnSource,
  onClosed: () => void
): () => void {
  let widget: Widget | null = null;
  const close = () => {
    if (!widget) {
      return;
    }
    document.removeEventListener('mousedown', outside, true);
    window.removeEventListener('resize', reposition);
    widget.dispose();
    widget = null;
    onClosed();
    anchor.focus();
  };
  const outside = (event: MouseEvent) => {
    const target = event.target as Node;
    if (widget && !widget.node.contains(target) && !anchor.contains(target)) {
      close();
    }
  };
  const reposition = () => widget && place(widget.node, anchor);
  widget = ReactWidget.create(<Chooser source={source} onClose={close} />);
  widget.addClass('nbtrace-ColumnChooser');
  Widget.attach(widget, document.body);
  place(widget.node, anchor);
  document.addEventListener('mousedown', outside, true);
  window.addEventListener('resize', reposition);
  return close;
}

/** A "Columns" button toggling the chooser. */
export function ColumnsButton(props: { source: IColumnSource }): JSX.Element {
  const button = useRef<HTMLButtonElement>(null);
  const closer = useRef<(() => void) | null>(null);
  const [open, setOpen] = useState(false);
  useEffect(() => () => closer.current?.(), []);
  return (
    <button
      ref={button}
      className="jp-Button jp-mod-styled jp-mod-minimal"
      aria-expanded={open}
      aria-haspopup="dialog"
      title="Choose param, metric and tag columns"
      onClick={() => {
        if (closer.current) {
          closer.current();
          return;
        }
        if (button.current) {
          setOpen(true);
          closer.current = openColumnChooser(button.current, props.source, () => {
            closer.current = null;
            setOpen(false);
          });
        }
      }}
    >
      Columns
    </button>
  );
}
