/**
 * Side-by-side comparison of 2..20 runs (`GET compare`), shown in the main area: params
 * with differences highlighted, metrics with the best value marked, metric-over-step and
 * param-vs-metric charts, a cell-level code diff and the environment diff.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { compareRuns } from '../api';
import { lineSpec, scatterSpec } from '../charts';
import { formatValue, sameValue } from '../format';
import { useAsync } from '../hooks';
import { nbtraceIcon } from '../icons';
import type { ICompare, IRunSummary } from '../types';
import { Chart } from './Chart';
import { Code, KeyPicker, Section, SourceDiff, UnifiedDiff } from './details/common';
import { ErrorMessage } from './RunsView';

/** A short label telling runs apart even when they share a name. */
export function runLabel(run: IRunSummary, all: IRunSummary[]): string {
  const same = all.filter(r => r.name === run.name).length > 1;
  return same ? `${run.name} (${run.id.slice(0, 6)})` : run.name;
}

function RunHeaders(props: { runs: IRunSummary[]; labels: Map<string, string> }): JSX.Element {
  return (
    <>
      {props.runs.map(run => (
        <th key={run.id} scope="col" title={`${run.name} · ${run.id}`}>
          {props.labels.get(run.id)}
        </th>
      ))}
    </>
  );
}

function ParamsTable(props: { data: ICompare; labels: Map<string, string> }): JSX.Element {
  const { data, labels } = props;
  const [onlyDiff, setOnlyDiff] = useState(false);
  const rows = data.params.filter(p => !onlyDiff || p.differs);
  const first = data.runs[0]?.id;
  return (
    <Section
      title="Parameters"
      className="nbtrace-CompareParams"
      extra={
        <label className="nbtrace-inline nbtrace-Section-extra" onClick={e => e.stopPropagation()}>
          <input
            type="checkbox"
            checked={onlyDiff}
            onChange={e => setOnlyDiff(e.currentTarget.checked)}
          />{' '}
          Only differences
        </label>
      }
    >
      <table className="nbtrace-Grid" aria-label="Parameters compared">
        <thead>
          <tr>
            <th scope="col">parameter</th>
            <RunHeaders runs={data.runs} labels={labels} />
          </tr>
        </thead>
        <tbody>
          {rows.map(p => (
            <tr key={p.key} className={p.differs ? 'nbtrace-diff' : undefined}>
              <th scope="row" title={p.key}>
                {p.key}
                {p.differs && <span className="nbtrace-visually-hidden"> (differs)</span>}
              </th>
              {data.runs.map(run => {
                const present = run.id in p.values && p.values[run.id] !== null;
                const value = p.values[run.id];
                const differs = p.differs && !sameValue(value, p.values[first]);
                return (
                  <td
                    key={run.id}
                    className={differs ? 'nbtrace-diff-cell' : undefined}
                    title={present ? formatValue(value) : undefined}
                  >
                    {present ? formatValue(value) : <span className="nbtrace-muted">—</span>}
                  </td>
                );
              })}
            </tr>
          ))}
          {rows.length === 0 && (
            <tr>
              <td colSpan={data.runs.length + 1} className="nbtrace-muted">
                {onlyDiff ? 'All parameters are equal.' : 'No parameters.'}
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </Section>
  );
}

function MetricsTable(props: { data: ICompare; labels: Map<string, string> }): JSX.Element {
  const { data, labels } = props;
  return (
    <Section title="Metrics" className="nbtrace-CompareMetrics">
      <table className="nbtrace-Grid" aria-label="Metrics compared">
        <thead>
          <tr>
            <th scope="col">metric</th>
            <RunHeaders runs={data.runs} labels={labels} />
          </tr>
        </thead>
        <tbody>
          {data.metrics.map(m => (
            <tr key={m.key} className={m.differs ? 'nbtrace-diff' : undefined}>
              <th
                scope="row"
                title={`${m.key} (${m.goal === 'max' ? 'higher' : 'lower'} is better)`}
              >
                {m.key}{' '}
                <span className="nbtrace-muted">
                  ({m.goal === 'max' ? 'higher' : 'lower'} is better)
                </span>
              </th>
              {data.runs.map(run => {
                const best = m.best === run.id;
                return (
                  <td key={run.id} className={'nbtrace-num' + (best ? ' nbtrace-best' : '')}>
                    {run.id in m.values && m.values[run.id] !== null ? (
                      formatValue(m.values[run.id])
                    ) : (
                      <span className="nbtrace-muted">—</span>
                    )}
                    {best && (
                      <span className="nbtrace-best-mark" title="best" aria-label="best">
                        {' '}
                        ★
                      </span>
                    )}
                  </td>
                );
              })}
            </tr>
          ))}
          {data.metrics.length === 0 && (
            <tr>
              <td colSpan={data.runs.length + 1} className="nbtrace-muted">
                No metrics.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </Section>
  );
}

function Charts(props: { data: ICompare; labels: Map<string, string> }): JSX.Element {
  const { data, labels } = props;
  const seriesKeys = Object.keys(data.series ?? {}).sort();
  const metricKeys = data.metrics.map(m => m.key);
  const paramKeys = data.params.map(p => p.key);
  const [seriesKey, setSeriesKey] = useState(seriesKeys[0] ?? '');
  const [x, setX] = useState(
    paramKeys.find(k => data.params.find(p => p.key === k)?.differs) ?? paramKeys[0] ?? ''
  );
  const [y, setY] = useState(metricKeys[0] ?? '');
  const series = seriesKey ? (data.series[seriesKey] ?? {}) : {};
  const lines = data.runs
    .filter(run => (series[run.id] ?? []).length > 0)
    .map(run => ({ label: labels.get(run.id) ?? run.id, points: series[run.id] }));
  const multiStep = lines.some(l => l.points.length > 1);
  const param = data.params.find(p => p.key === x);
  const metric = data.metrics.find(m => m.key === y);
  const points = data.runs.map(run => ({
    run: labels.get(run.id) ?? run.id,
    x: param?.values[run.id],
    y: metric?.values[run.id]
  }));

  return (
    <Section title="Charts" className="nbtrace-CompareCharts">
      <div className="nbtrace-ChartGrid">
        <div>
          <KeyPicker
            label="Metric over steps"
            keys={seriesKeys}
            value={seriesKey}
            onChange={setSeriesKey}
          />
          {lines.length > 0 && multiStep ? (
            <Chart
              spec={lineSpec(seriesKey, lines)}
              label={`${seriesKey} over steps, one line per run`}
            />
          ) : (
            <div className="nbtrace-muted">No metric logged over several steps.</div>
          )}
        </div>
        <div>
          <KeyPicker label="Parameter" keys={paramKeys} value={x} onChange={setX} />{' '}
          <KeyPicker label="vs metric" keys={metricKeys} value={y} onChange={setY} />
          {param && metric ? (
            <Chart
              spec={scatterSpec(points, x, y)}
              label={`${y} against ${x}, one point per run`}
            />
          ) : (
            <div className="nbtrace-muted">Needs a parameter and a metric.</div>
          )}
        </div>
      </div>
    </Section>
  );
}

function CodeDiff(props: { data: ICompare; labels: Map<string, string> }): JSX.Element {
  const { data, labels } = props;
  const base = data.code?.base;
  const others = Object.keys(data.code?.diffs ?? {}).filter(id => id !== base);
  const [other, setOther] = useState(others[0] ?? '');
  const [showEqual, setShowEqual] = useState(false);
  const diffs = data.code?.diffs?.[other] ?? [];
  const changed = diffs.filter(d => d.op !== 'equal').length;
  return (
    <Section title="Code" className="nbtrace-CompareCode">
      <div className="nbtrace-inline">
        <span>
          Cells of <strong>{labels.get(base) ?? base}</strong> against{' '}
        </span>
        <select
          className="nbtrace-select"
          aria-label="Run to diff against"
          value={other}
          onChange={e => setOther(e.currentTarget.value)}
        >
          {others.map(id => (
            <option key={id} value={id}>
              {labels.get(id) ?? id}
            </option>
          ))}
        </select>{' '}
        <span className="nbtrace-muted">
          {changed === 0 ? 'same code' : `${changed} cell${changed === 1 ? '' : 's'} differ`}
        </span>{' '}
        <label>
          <input
            type="checkbox"
            checked={showEqual}
            onChange={e => setShowEqual(e.currentTarget.checked)}
          />{' '}
          Show equal cells
        </label>
      </div>
      <ol className="nbtrace-CellDiffs">
        {diffs.map((d, k) =>
          d.op === 'equal' && !showEqual ? null : (
            <li key={k} className={`nbtrace-CellDiff nbtrace-CellDiff-${d.op}`}>
              <div className="nbtrace-Cell-header">
                <span className="nbtrace-Badge">{d.op}</span>{' '}
                {d.a && <span className="nbtrace-muted">#{d.a.seq}</span>}
                {d.a && d.b && ' → '}
                {d.b && <span className="nbtrace-muted">#{d.b.seq}</span>}
              </div>
              {d.op === 'changed' && d.a && d.b ? (
                // Computed here from both sources; the server's text is the fallback.
                <SourceDiff a={d.a.source ?? ''} b={d.b.source ?? ''} />
              ) : d.op === 'changed' && d.diff ? (
                <UnifiedDiff diff={d.diff} />
              ) : (
                <Code
                  source={(d.b ?? d.a)?.source ?? ''}
                  className={
                    d.op === 'added'
                      ? 'nbtrace-code-add'
                      : d.op === 'removed'
                        ? 'nbtrace-code-del'
                        : ''
                  }
                />
              )}
            </li>
          )
        )}
      </ol>
    </Section>
  );
}

function EnvironmentDiff(props: { data: ICompare; labels: Map<string, string> }): JSX.Element {
  const { data, labels } = props;
  const env = data.environment;
  const [all, setAll] = useState(false);
  const packages = (env?.packages ?? []).filter(p => {
    const versions = data.runs.map(r => p.values[r.id] ?? null);
    return all || versions.some(v => v !== versions[0]);
  });
  const row = (label: string, values: { [id: string]: string | null } | undefined) => {
    const vals = data.runs.map(r => values?.[r.id] ?? null);
    const differs = vals.some(v => v !== vals[0]);
    return (
      <tr key={label} className={differs ? 'nbtrace-diff' : undefined}>
        <th scope="row" title={label}>
          {label}
        </th>
        {vals.map((v, k) => (
          <td
            key={data.runs[k].id}
            className={differs && v !== vals[0] ? 'nbtrace-diff-cell' : undefined}
          >
            {v ?? <span className="nbtrace-muted">—</span>}
          </td>
        ))}
      </tr>
    );
  };
  return (
    <Section
      title={env?.differs ? 'Environment (differs)' : 'Environment (same)'}
      className="nbtrace-CompareEnvironment"
      open={!!env?.differs}
      extra={
        <label className="nbtrace-inline nbtrace-Section-extra" onClick={e => e.stopPropagation()}>
          <input type="checkbox" checked={all} onChange={e => setAll(e.currentTarget.checked)} />{' '}
          All packages
        </label>
      }
    >
      <table className="nbtrace-Grid" aria-label="Environments compared">
        <thead>
          <tr>
            <th scope="col" />
            <RunHeaders runs={data.runs} labels={labels} />
          </tr>
        </thead>
        <tbody>
          {row('python', env?.python)}
          {row('platform', env?.platform)}
          {packages.map(p => row(p.name, p.values))}
        </tbody>
      </table>
    </Section>
  );
}

/** The comparison of a set of runs. */
export function CompareView(props: { ids: string[] }): JSX.Element {
  const result = useAsync(() => compareRuns(props.ids), [props.ids.join(',')]);
  if (result.error) {
    return <ErrorMessage title="Cannot compare these runs" message={result.error.message} />;
  }
  const data = result.value;
  if (!data) {
    return <div className="nbtrace-muted nbtrace-Empty">Comparing {props.ids.length} runs…</div>;
  }
  const labels = new Map(data.runs.map(r => [r.id, runLabel(r, data.runs)]));
  return (
    <div className="nbtrace-Compare">
      <h2>
        Comparing {data.runs.length} runs: {data.runs.map(r => labels.get(r.id)).join(', ')}
      </h2>
      <ParamsTable data={data} labels={labels} />
      <MetricsTable data={data} labels={labels} />
      <Charts data={data} labels={labels} />
      <CodeDiff data={data} labels={labels} />
      <EnvironmentDiff data={data} labels={labels} />
    </div>
  );
}

/** A main-area widget comparing runs. */
export function createCompareWidget(runs: IRunSummary[]): MainAreaWidget {
  const ids = runs.map(r => r.id);
  const content = ReactWidget.create(<CompareView ids={ids} />);
  content.addClass('nbtrace-CompareWidget');
  const widget = new MainAreaWidget({ content });
  widget.id = `nbtrace-compare-${ids.join('-').slice(0, 80)}-${Date.now()}`;
  widget.title.label = `Compare ${runs.length} runs`;
  widget.title.caption = runs.map(r => r.name).join(' · ');
  widget.title.icon = nbtraceIcon;
  widget.title.closable = true;
  return widget;
}
