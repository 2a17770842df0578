/**
 * The selection part of a runs toolbar: Compare (2 to {@link MAX_COMPARE} ticked runs), how
 * many are ticked, and Clear.
 */
import React from 'react';

import type { RunsModel } from '../model';

/** Most runs one comparison takes. */
export const MAX_COMPARE = 20;

/** Props of {@link SelectionActions}. */
export interface ISelectionActionsProps {
  model: RunsModel;
  /** How the view names ticking a run: "Select" (sidebar) or "Tick" (table). */
  verb: 'Select' | 'Tick';
  onCompare: () => void;
}

/** Compare, the count, Clear. */
export function SelectionActions(props: ISelectionActionsProps): JSX.Element {
  const { model, verb } = props;
  const count = model.selected.length;
  const canCompare = count >= 2 && count <= MAX_COMPARE;
  const ticked = verb === 'Tick' ? 'ticked' : 'selected';
  return (
    <>
      <button
        className="jp-Button jp-mod-styled jp-mod-accept nbtrace-CompareButton"
        disabled={!canCompare}
        title={
          canCompare
            ? `Compare the ${ticked} runs`
            : `${verb} 2 to ${MAX_COMPARE} runs to compare them`
        }
        onClick={props.onCompare}
      >
        Compare
      </button>
      <span className="nbtrace-muted nbtrace-SelectedCount" aria-live="polite">
        {count > 0 ? `${count} selected` : ''}
      </span>
      {count > 0 && (
        <button
          className="jp-Button jp-mod-styled jp-mod-minimal nbtrace-link"
          onClick={() => model.clearSelection()}
        >
          Clear
        </button>
      )}
    </>
  );
}
