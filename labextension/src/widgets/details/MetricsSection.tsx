/**
 * Params and metrics of one run; a chart of the chosen metric over its steps.
 */
import React, { useState } from 'react';

import { getMetricSeries } from '../../api';
import { lineSpec } from '../../charts';
import { useAsync } from '../../hooks';
import type { IRun } from '../../types';
import { Chart } from '../Chart';
import { KeyPicker, KeyValueTable, Section, Value } from './common';

/** Params of a run. */
export function ParamsSection(props: { run: IRun }): JSX.Element {
  const params = props.run.params ?? {};
  return (
    <Section title="Parameters" className="nbtrace-ParamsSection">
      <KeyValueTable
        label="Parameters"
        empty="No parameters logged."
        rows={Object.keys(params)
          .sort()
          .map(k => [k, <Value value={params[k]} />])}
      />
    </Section>
  );
}

/** Latest metrics of a run and the chart of one of them. */
export function MetricsSection(props: { run: IRun }): JSX.Element {
  const { run } = props;
  const metrics = run.metrics ?? {};
  const keys = Object.keys(metrics).sort();
  const [chosen, setChosen] = useState<string | null>(null);
  const metric = chosen && keys.includes(chosen) ? chosen : (keys[0] ?? null);
  const series = useAsync(
    () => (metric ? getMetricSeries(run.id, metric) : null),
    [run.id, metric, run.status === 'running' ? run.metrics?.[metric ?? ''] : null]
  );
  const points = series.value ?? [];

  return (
    <Section title="Metrics" className="nbtrace-MetricsSection">
      <KeyValueTable
        label="Metrics"
        empty="No metrics logged."
        rows={keys.map(k => [k, <Value value={metrics[k]} />])}
      />
      {metric && (
        <div className="nbtrace-MetricChart">
          <KeyPicker label="Chart" keys={keys} value={metric} onChange={setChosen} />
          {series.error ? (
            <div className="nbtrace-error">{series.error.message}</div>
          ) : points.length > 1 ? (
            <Chart
              spec={lineSpec(metric, [{ label: run.name, points }])}
              label={`${metric} over steps`}
            />
          ) : series.loading ? null : (
            <div className="nbtrace-muted">
              {points.length === 1 ? 'One value logged (no steps to plot).' : 'No series.'}
            </div>
          )}
        </div>
      )}
    </Section>
  );
}
