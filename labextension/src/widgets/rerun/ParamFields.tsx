/**
 * The re-execute dialog's "Parameters": one input a param with its original value, marked
 * when edited, read-only when the param cannot be overridden (the drift check says so, or only
 * MLflow's autolog logged it), with the reason and any parse problem next to it.
 */
import React from 'react';

import { formatValue } from '../../format';
import type { IDrift, JSONValue } from '../../types';

/** Props of {@link ParamFields}. */
export interface IParamFieldsProps {
  /** Prefix of the inputs' ids (unique per dialog). */
  id: string;
  params: { [name: string]: JSONValue };
  texts: { [name: string]: string };
  overrides: { [name: string]: JSONValue };
  problems: { [name: string]: string };
  /** What the drift check says of the params' overridability. */
  blocked: NonNullable<IDrift['parameters']>;
  /** Params only MLflow's client logged: shown, not editable. */
  mlflowOnly: ReadonlySet<string>;
  disabled: boolean;
  firstInput: React.RefObject<HTMLInputElement>;
  onEdit: (name: string, text: string) => void;
}

const MLFLOW_ONLY_TITLE =
  'logged by MLflow (autolog): not overridable; read it with nbtrace.log_param to edit it';

/** One param's row. */
function ParamField(props: IParamFieldsProps & { name: string; index: number }): JSX.Element {
  const { name, blocked, problems, mlflowOnly } = props;
  const inputId = `${props.id}-p-${props.index}`;
  const edited = name in props.overrides;
  const fixed = blocked[name] && !blocked[name].overridable;
  const problem = problems[name];
  return (
    <div className={'nbtrace-Rerun-param' + (edited ? ' nbtrace-mod-edited' : '')}>
      <label htmlFor={inputId}>{name}</label>
      <input
        id={inputId}
        ref={props.index === 0 ? props.firstInput : undefined}
        className="jp-mod-styled"
        value={props.texts[name]}
        spellCheck={false}
        readOnly={!!fixed || mlflowOnly.has(name)}
        title={
          fixed
            ? `not overridable: ${blocked[name].reason ?? ''}`
            : mlflowOnly.has(name)
              ? MLFLOW_ONLY_TITLE
              : undefined
        }
        aria-invalid={problem ? true : undefined}
        aria-describedby={problem ? `${inputId}-err` : undefined}
        onChange={e => props.onEdit(name, e.currentTarget.value)}
      />
      <span className="nbtrace-muted nbtrace-Rerun-original" title="original value">
        {edited
          ? `was ${formatValue(props.params[name])}`
          : mlflowOnly.has(name) && !fixed
            ? 'not overridable'
            : ''}
      </span>
      {problem && (
        <span id={`${inputId}-err`} className="nbtrace-error">
          {name} {problem}
        </span>
      )}
      {fixed && !problem && (
        <span className="nbtrace-muted nbtrace-Rerun-fixed">
          not overridable: {blocked[name].reason ?? ''}
        </span>
      )}
    </div>
  );
}

/** The parameters fieldset. */
export function ParamFields(props: IParamFieldsProps): JSX.Element {
  const names = Object.keys(props.params).sort();
  return (
    <fieldset className="nbtrace-Rerun-params" disabled={props.disabled}>
      <legend>Parameters</legend>
      {names.length === 0 && <div className="nbtrace-muted">The run logged no parameters.</div>}
      {names.map((name, k) => (
        <ParamField key={name} {...props} name={name} index={k} />
      ))}
    </fieldset>
  );
}
