/**
 * Poll a server job (a re-execution, a sweep) by id until it is over.
 */
import { useEffect, useRef, useState } from 'react';

/** How to poll. */
export interface IPollOptions<T> {
  /** Fetch the job's state. */
  get: (id: string) => Promise<T>;
  /** Whether the job is over (polling stops). */
  over: (state: T) => boolean;
  /** Milliseconds between polls. */
  intervalMs: number;
  /** Called once with the final state. */
  onOver?: (state: T) => void;
  /** Called when a poll fails (polling stops). */
  onError: (message: string) => void;
}

/**
 * The latest state of the job `id` (null before the first answer, or without an id). The
 * options are read at each poll, so callers may pass a new object each render.
 */
export function usePolled<T>(id: string | null, options: IPollOptions<T>): T | null {
  const [state, setState] = useState<T | null>(null);
  const latest = useRef(options);
  latest.current = options;
  useEffect(() => {
    if (!id) {
      return;
    }
    let live = true;
    let timer = 0;
    const poll = async () => {
      const opts = latest.current;
      try {
        const value = await opts.get(id);
        if (!live) {
          return;
        }
        setState(value);
        if (opts.over(value)) {
          opts.onOver?.(value);
          return;
        }
      } catch (e) {
        if (live) {
          opts.onError((e as Error).message);
        }
        return;
      }
      timer = window.setTimeout(() => void poll(), opts.intervalMs);
    };
    void poll();
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [id]);
  return state;
}
