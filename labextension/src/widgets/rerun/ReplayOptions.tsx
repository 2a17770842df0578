/**
 * The re-execute dialog's "Replay" options: the recorded modules, and how many replays.
 */
import React from 'react';

/** Most replays one re-execution takes. */
export const MAX_REPEAT = 20;

/** Whether the repeat text is a count the server takes. */
export function repeatCount(text: string): number | null {
  const repeat = Number(text);
  return Number.isInteger(repeat) && repeat >= 1 && repeat <= MAX_REPEAT ? repeat : null;
}

/** The replay fieldset. */
export function ReplayOptions(props: {
  id: string;
  disabled: boolean;
  recordedModules: boolean;
  repeatText: string;
  onRecordedModules: (value: boolean) => void;
  onRepeatText: (text: string) => void;
}): JSX.Element {
  const { id } = props;
  const repeatValid = repeatCount(props.repeatText) !== null;
  return (
    <fieldset className="nbtrace-Rerun-options" disabled={props.disabled}>
      <legend>Replay</legend>
      <label>
        <input
          type="checkbox"
          checked={props.recordedModules}
          onChange={e => props.onRecordedModules(e.currentTarget.checked)}
        />{' '}
        Use recorded modules
      </label>
      <label htmlFor={`${id}-repeat`}>Repeat</label>
      <input
        id={`${id}-repeat`}
        className="jp-mod-styled nbtrace-Rerun-repeat"
        type="number"
        min={1}
        max={MAX_REPEAT}
        value={props.repeatText}
        aria-invalid={repeatValid ? undefined : true}
        onChange={e => props.onRepeatText(e.currentTarget.value)}
      />
      {!repeatValid && <span className="nbtrace-error">Repeat takes 1 to {MAX_REPEAT}</span>}
    </fieldset>
  );
}
