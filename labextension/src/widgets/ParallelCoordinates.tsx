/**
 * The `Parallel coordinates` view of the main-area table: the selected runs (two or more),
 * else the first runs of the table's filter, one axis per param and metric column of the
 * table. Brushing an axis filters the table (the brush becomes the model's extra filter).
 */
import React, { useEffect, useMemo, useRef } from 'react';

import { listRuns } from '../api';
import { sameItems, useAsync, useSignals, useStable } from '../hooks';
import { RunsModel } from '../model';
import { axesOf, brushFilter, parcoordsSpec } from '../parcoords';
import type { ColumnKey } from '../model';
import { Chart } from './Chart';

/** Runs drawn at most when none are selected. */
export const PARCOORDS_LIMIT = 500;

/** Props of {@link ParallelCoordinates}. */
export interface IParallelCoordinatesProps {
  model: RunsModel;
  keys: ColumnKey[];
}

/** The view. */
export function ParallelCoordinates(props: IParallelCoordinatesProps): JSX.Element {
  const { model, keys } = props;
  useSignals(model.selectionChanged);
  const selected = model.selectedRuns;
  const useSelection = selected.length >= 2;
  const loaded = useAsync(
    () =>
      useSelection
        ? Promise.resolve({ runs: selected, total: selected.length })
        : listRuns({ filter: model.filter || undefined, sort: model.sort, limit: PARCOORDS_LIMIT }),
    [useSelection ? selected.map(r => r.id).join(',') : '', model.filter, model.sort]
  );
  const runs = useMemo(() => loaded.value?.runs ?? [], [loaded.value]);
  // The chosen keys come as a new list at each render: the same keys, the same axes.
  const stableKeys = useStable(keys, sameItems);
  const axes = useMemo(() => axesOf(runs, stableKeys), [runs, stableKeys]);
  const timer = useRef<number | null>(null);
  useEffect(
    () => () => {
      if (timer.current !== null) {
        window.clearTimeout(timer.current);
      }
    },
    []
  );

  const onBrush = (value: unknown) => {
    if (timer.current !== null) {
      window.clearTimeout(timer.current);
    }
    // The brush moves with the pointer: filter the table once it rests.
    timer.current = window.setTimeout(() => {
      timer.current = null;
      model.setExtraFilter(brushFilter(value, axes));
    }, 250);
  };

  const source = useSelection
    ? `${selected.length} selected runs`
    : `the first ${Math.min(runs.length, PARCOORDS_LIMIT)} of ${loaded.value?.total ?? '…'} runs`;
  return (
    <section className="nbtrace-ParCoords" role="region" aria-label="Parallel coordinates">
      <div className="nbtrace-ParCoords-head">
        <strong>Parallel coordinates</strong>{' '}
        <span className="nbtrace-muted">
          of {source}; drag over an axis to filter the table by it.
        </span>
        {model.extraFilter && (
          <span className="nbtrace-Chip">
            <code title={model.extraFilter}>{model.extraFilter}</code>
            <button
              className="jp-Button jp-mod-minimal nbtrace-link"
              aria-label="Clear the brush filter"
              onClick={() => model.setExtraFilter('')}
            >
              ✕
            </button>
          </span>
        )}
      </div>
      {loaded.error && <div className="nbtrace-error">{loaded.error.message}</div>}
      {axes.length < 2 ? (
        <div className="nbtrace-muted">
          Needs two or more numeric param or metric columns: add them with Columns.
        </div>
      ) : (
        <Chart
          spec={parcoordsSpec(runs, axes)}
          label={`Parallel coordinates of ${source}: axes ${axes.map(a => a.key).join(', ')}`}
          signals={{ brush: onBrush }}
        />
      )}
    </section>
  );
}
