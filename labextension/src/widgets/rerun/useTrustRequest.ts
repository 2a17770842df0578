/**
 * Starting a re-execution or a sweep of a run that needs the user's trust (recorded by another
 * user or host, or imported): the first attempt goes without trust; when the server asks for
 * it, the run's code is loaded for the confirmation step, and the user's "Trust and run"
 * starts again with trust.
 */
import { useState } from 'react';

import { getRun, needsTrust } from '../../api';
import type { IRecordedCell, IRunSummary } from '../../types';

/** What the server said when it asked for trust, and the code that would run. */
export interface ITrustRequest {
  reason: string;
  recordedBy: string;
  cells: IRecordedCell[] | null;
}

/** The state of a start that may ask for trust. */
export interface ITrustedStart {
  /** The pending confirmation, or null. */
  request: ITrustRequest | null;
  /** True while a start is under way. */
  starting: boolean;
  /** Start (with trust once the user gave it); other errors go to `onError`. */
  start: (trust?: boolean) => Promise<void>;
}

/**
 * @param launch - starts the job (`startRerun`, `startSweep`) and keeps its id
 * @param onError - shows a message (`null` clears it when a start begins)
 */
export function useTrustRequest(
  run: IRunSummary,
  launch: (trust: boolean) => Promise<void>,
  onError: (message: string | null) => void
): ITrustedStart {
  const [request, setRequest] = useState<ITrustRequest | null>(null);
  const [starting, setStarting] = useState(false);
  const start = async (trust = false) => {
    setStarting(true);
    onError(null);
    try {
      await launch(trust);
      setRequest(null);
    } catch (e) {
      if (!trust && needsTrust(e)) {
        const recordedBy = `${run.user ?? '?'}@${run.host ?? '?'}`;
        setRequest({ reason: (e as Error).message, recordedBy, cells: null });
        getRun(run.id).then(
          full => setRequest(t => t && { ...t, cells: full.cells ?? [] }),
          err => onError((err as Error).message)
        );
      } else {
        onError((e as Error).message);
      }
    } finally {
      setStarting(false);
    }
  };
  return { request, starting, start };
}
