/**
 * Small React hooks shared by the views.
 */
import { ISignal } from '@lumino/signaling';
import { useCallback, useEffect, useReducer, useRef, useState } from 'react';

/** Whether two lists hold the same items (by identity), in order. */
export function sameItems<T>(a: readonly T[] | null, b: readonly T[] | null): boolean {
  if (a === b) {
    return true;
  }
  if (!a || !b || a.length !== b.length) {
    return false;
  }
  return a.every((item, k) => Object.is(item, b[k]));
}

/**
 * The value of the first render at which it became `same` as the current one: a list or
 * object built anew at each render keeps its identity while its content does not change, so
 * it can be a hook dependency.
 */
export function useStable<T>(value: T, same: (a: T, b: T) => boolean): T {
  const ref = useRef(value);
  if (!same(ref.current, value)) {
    ref.current = value;
  }
  return ref.current;
}

/** Re-render the component whenever one of the signals fires. */
export function useSignals(...signals: ISignal<any, any>[]): void {
  const [, tick] = useReducer((n: number) => n + 1, 0);
  const stable = useStable(signals, sameItems);
  useEffect(() => {
    const slot = () => tick();
    stable.forEach(s => s.connect(slot));
    return () => {
      stable.forEach(s => s.disconnect(slot));
    };
  }, [stable]);
}

/** The state of an async load. */
export interface IAsync<T> {
  value: T | null;
  error: Error | null;
  loading: boolean;
}

/**
 * Run an async loader whenever `deps` change, ignoring stale answers. The loader of the
 * latest render is the one called.
 *
 * @returns the latest value, error and loading flag, and a `reload` function (the same one
 *   at every render)
 */
export function useAsync<T>(
  load: () => Promise<T> | null,
  deps: unknown[]
): IAsync<T> & { reload: () => void } {
  const [state, setState] = useState<IAsync<T>>({ value: null, error: null, loading: false });
  const [version, setVersion] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  const key = useStable(deps, sameItems);
  useEffect(() => {
    let live = true;
    const promise = loader.current();
    if (!promise) {
      setState({ value: null, error: null, loading: false });
      return;
    }
    setState(s => ({ ...s, loading: true, error: null }));
    promise.then(
      value => live && setState({ value, error: null, loading: false }),
      error => live && setState({ value: null, error, loading: false })
    );
    return () => {
      live = false;
    };
  }, [key, version]);
  const reload = useCallback(() => setVersion(v => v + 1), []);
  return { ...state, reload };
}
