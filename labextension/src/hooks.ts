/**
 * Small React hooks shared by the views.
 */
import { ISignal } from '@lumino/signaling';
import { useEffect, useReducer, useState } from 'react';

/** Re-render the component whenever one of the signals fires. */
export function useSignals(...signals: ISignal<any, any>[]): void {
  const [, tick] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    const slot = () => tick();
    signals.forEach(s => s.connect(slot));
    return () => {
      signals.forEach(s => s.disconnect(slot));
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, signals);
}

/** The state of an async load. */
export interface IAsync<T> {
  value: T | null;
  error: Error | null;
  loading: boolean;
}

/**
 * Run an async loader whenever `deps` change, ignoring stale answers.
 *
 * @returns the latest value, error and loading flag, and a `reload` function
 */
export function useAsync<T>(
  load: () => Promise<T> | null,
  deps: unknown[]
): IAsync<T> & { reload: () => void } {
  const [state, setState] = useState<IAsync<T>>({ value: null, error: null, loading: false });
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let live = true;
    const promise = load();
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
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, version]);
  return { ...state, reload: () => setVersion(v => v + 1) };
}
