/**
 * Edited parameter values, as the re-execute and sweep dialogs read them: the text of a value
 * in its input, the text parsed back with the original's type, and what a set of edits asks
 * the server for (overrides, which of them are floats, what is wrong with the others).
 */
import { sameValue } from './format';
import type { IDrift, JSONValue } from './types';

/** The text of a param value in its input. */
export function toText(value: JSONValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Parse an edited value with the type of the original: numbers stay numbers, booleans
 * booleans, strings strings; lists and objects are JSON.
 *
 * @throws Error with a message for the user when the text does not fit the type
 */
export function parseEdited(text: string, original: JSONValue): JSONValue {
  if (typeof original === 'string') {
    return text;
  }
  const trimmed = text.trim();
  if (typeof original === 'number') {
    if (['NaN', 'nan'].includes(trimmed)) {
      return 'NaN';
    }
    const n = Number(trimmed);
    if (trimmed === '' || Number.isNaN(n)) {
      throw new Error('expects a number');
    }
    return n;
  }
  if (typeof original === 'boolean') {
    if (/^(true|1|yes)$/i.test(trimmed)) {
      return true;
    }
    if (/^(false|0|no)$/i.test(trimmed)) {
      return false;
    }
    throw new Error('expects true or false');
  }
  try {
    return JSON.parse(trimmed);
  } catch {
    throw new Error('expects a JSON value');
  }
}

/**
 * Parse "0.1, 0.2, 0.5" into values of the original's type.
 *
 * @throws Error naming the bad item
 */
export function parseValues(text: string, original: JSONValue): JSONValue[] {
  const parts = text
    .split(',')
    .map(p => p.trim())
    .filter(p => p !== '');
  if (parts.length === 0) {
    throw new Error('needs at least one value');
  }
  return parts.map(p => {
    try {
      return parseEdited(p, original);
    } catch (e) {
      throw new Error(`"${p}" ${(e as Error).message}`);
    }
  });
}

/** What the edited params of a re-execution ask for. */
export interface IEdits {
  /** The params whose value changed, with the new value. */
  overrides: { [name: string]: JSONValue };
  /** Params to send as Python floats (typed with a `.` or exponent, or a float originally). */
  floats: Set<string>;
  /** Why a param's text cannot be sent, by name. */
  problems: { [name: string]: string };
}

/**
 * Read the edited texts against the run's params; an edit of a param the drift check says
 * is not overridable is a problem.
 */
export function readEdits(
  params: { [name: string]: JSONValue },
  texts: { [name: string]: string },
  blocked: NonNullable<IDrift['parameters']> = {}
): IEdits {
  const edits: IEdits = { overrides: {}, floats: new Set(), problems: {} };
  for (const name of Object.keys(params)) {
    const original = params[name];
    try {
      const value = parseEdited(texts[name], original);
      if (!sameValue(value, original)) {
        edits.overrides[name] = value;
      }
      // Keep Python's float type: typed as a float, or the original was one.
      if (
        /[.eE]/.test(texts[name]) ||
        (typeof original === 'number' && !Number.isInteger(original))
      ) {
        edits.floats.add(name);
      }
    } catch (e) {
      edits.problems[name] = (e as Error).message;
    }
  }
  for (const name of Object.keys(edits.overrides)) {
    if (blocked[name] && !blocked[name].overridable) {
      edits.problems[name] = `is not overridable: ${blocked[name].reason ?? ''}`;
    }
  }
  return edits;
}
