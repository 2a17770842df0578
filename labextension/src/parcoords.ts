/**
 * Parallel coordinates of runs as a Vega-Lite spec, and the query a brush stands for.
 *
 * Vega-Lite through the vega-embed already bundled for the compare charts: no new
 * dependency, the same theme config, SVG output. Each axis is one param or metric, values
 * scaled to [0, 1] between the axis's min and max (labelled at both ends); axes sit at
 * x = 0..n-1 on a quantitative scale, so one interval selection (`brush`, x and y) drawn over
 * an axis reads back as "axis i, values between lo and hi", which becomes a filter in the
 * query language that the server applies to the table.
 */
import { asFinite } from './format';
import { ColumnKey, queryKey } from './model';
import { cellText } from './table/columns';
import type { IRunSummary } from './types';

/** One axis: its column and the range of its values. */
export interface IAxis {
  key: ColumnKey;
  min: number;
  max: number;
}

/** The numeric value of a param/metric column for a run, or null. */
export function axisValue(run: IRunSummary, key: ColumnKey): number | null {
  const dot = key.indexOf('.');
  const group = key.slice(0, dot) as 'params' | 'metrics';
  return asFinite(run[group]?.[key.slice(dot + 1)]);
}

/** Axes for the keys that have at least one numeric value among the runs. */
export function axesOf(runs: IRunSummary[], keys: ColumnKey[]): IAxis[] {
  const axes: IAxis[] = [];
  for (const key of keys) {
    if (!key.startsWith('params.') && !key.startsWith('metrics.')) {
      continue;
    }
    const values = runs.map(r => axisValue(r, key)).filter((v): v is number => v !== null);
    if (values.length) {
      axes.push({ key, min: Math.min(...values), max: Math.max(...values) });
    }
  }
  return axes;
}

function norm(axis: IAxis, value: number): number {
  return axis.max === axis.min ? 0.5 : (value - axis.min) / (axis.max - axis.min);
}

type Spec = Record<string, any>;

/** The chart. */
export function parcoordsSpec(runs: IRunSummary[], axes: IAxis[]): Spec {
  const points: Record<string, unknown>[] = [];
  for (const run of runs) {
    axes.forEach((axis, i) => {
      const v = axisValue(run, axis.key);
      if (v !== null) {
        points.push({
          id: run.id,
          run: run.name,
          axis: i,
          key: axis.key,
          value: v,
          norm: norm(axis, v)
        });
      }
    });
  }
  const labels = axes.map(a => a.key);
  const ends = axes.flatMap((a, i) => [
    { axis: i, norm: 0, text: cellText({ params: { v: a.min } } as any, 'params.v') },
    { axis: i, norm: 1, text: cellText({ params: { v: a.max } } as any, 'params.v') }
  ]);
  const x = {
    field: 'axis',
    type: 'quantitative',
    scale: { domain: [0, Math.max(1, axes.length - 1)], nice: false, padding: 24 },
    axis: {
      title: null,
      values: axes.map((_, i) => i),
      labelExpr: `${JSON.stringify(labels)}[datum.value]`,
      orient: 'top',
      grid: false,
      labelLimit: 140
    }
  };
  const y = { field: 'norm', type: 'quantitative', scale: { domain: [0, 1] }, axis: null };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 'container',
    height: 240,
    autosize: { type: 'fit', contains: 'padding' },
    layer: [
      {
        data: { values: axes.map((_, i) => ({ axis: i })) },
        mark: { type: 'rule', color: 'gray', opacity: 0.7 },
        encoding: {
          x,
          y: { datum: 0, type: 'quantitative', scale: { domain: [0, 1] }, axis: null },
          y2: { datum: 1 }
        }
      },
      {
        data: { values: points },
        mark: { type: 'line', strokeWidth: 1.2, opacity: 0.55 },
        encoding: {
          x,
          y,
          detail: { field: 'id' },
          color: { field: 'run', type: 'nominal', legend: null },
          tooltip: [{ field: 'run' }, { field: 'key' }, { field: 'value' }]
        }
      },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 18 },
        params: [{ name: 'brush', select: { type: 'interval', encodings: ['x', 'y'] } }],
        encoding: { x, y, color: { field: 'run', type: 'nominal', legend: null } }
      },
      {
        data: { values: ends },
        mark: { type: 'text', dx: 6, align: 'left', fontSize: 9 },
        encoding: { x, y, text: { field: 'text' } }
      }
    ]
  };
}

/** Shortest decimal text that keeps a bound on the safe side. */
function bound(value: number, up: boolean): string {
  const text = Number(value.toPrecision(6));
  const safe = up ? (text < value ? value : text) : text > value ? value : text;
  return String(safe);
}

/**
 * The filter a brush stands for: every axis inside the brush's x range, between the values
 * its y range maps to; `''` for an empty brush.
 *
 * @param brush - the value of the `brush` signal: `{axis: [x0, x1], norm: [y0, y1]}`
 */
export function brushFilter(brush: unknown, axes: IAxis[]): string {
  const b = brush as { axis?: number[]; norm?: number[] } | null;
  if (!b?.axis || !b.norm || b.axis.length < 2 || b.norm.length < 2) {
    return '';
  }
  const [x0, x1] = [Math.min(...b.axis), Math.max(...b.axis)];
  const [y0, y1] = [Math.min(...b.norm), Math.max(...b.norm)];
  const parts: string[] = [];
  axes.forEach((axis, i) => {
    if (i < x0 || i > x1) {
      return;
    }
    const span = axis.max - axis.min;
    const lo = axis.min + Math.max(0, y0) * span;
    const hi = axis.min + Math.min(1, y1) * span;
    const key = queryKey(axis.key);
    parts.push(`${key} >= ${bound(lo, false)} and ${key} <= ${bound(hi, true)}`);
  });
  return parts.join(' and ');
}
