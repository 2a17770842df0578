/**
 * The trust step shared by the re-execute and sweep dialogs.
 */
import React, { useId, useState } from 'react';

import type { ITrustRequest } from './useTrustRequest';

/**
 * The confirmation step for a run recorded by another user or host, or imported: who
 * recorded it, the code that will run (as text, never as markup) and an explicit choice.
 */
export function TrustConfirmation(props: {
  request: ITrustRequest;
  starting: boolean;
  onTrust: () => void;
}): JSX.Element {
  const { request, starting, onTrust } = props;
  const id = useId();
  const [checked, setChecked] = useState(false);
  return (
    <section className="nbtrace-Rerun-trust" aria-label="Trust this code">
      <h3>Trust this code?</h3>
      <div className="nbtrace-warn" role="alert">
        Recorded by <strong>{request.recordedBy}</strong>. {request.reason}
      </div>
      <p className="nbtrace-muted">The cells below will run in a kernel started as you:</p>
      <div className="nbtrace-Rerun-code" tabIndex={0} aria-label="Code that will run">
        {request.cells === null && <div className="nbtrace-muted">Loading the code…</div>}
        {request.cells?.map(c => (
          <pre key={c.seq} className="nbtrace-Rerun-cell">
            <span className="nbtrace-muted">[{c.seq}] </span>
            {c.source}
          </pre>
        ))}
      </div>
      <div>
        <input
          id={`${id}-trust`}
          type="checkbox"
          checked={checked}
          onChange={e => setChecked(e.currentTarget.checked)}
        />
        <label htmlFor={`${id}-trust`}>I have read this code and trust it</label>
      </div>
      <button
        className="jp-Button jp-mod-styled jp-mod-warn"
        disabled={!checked || starting || request.cells === null}
        onClick={onTrust}
      >
        Trust and run
      </button>
    </section>
  );
}
