/**
 * Vega-Lite chart specs for metrics. vega-embed is loaded on first use (its own chunk), so
 * the sidebar paints without it. Colors come from the JupyterLab theme's CSS variables.
 */
import { Signal } from '@lumino/signaling';

import { asFinite } from './format';
import type { IMetricPoint } from './types';

/** Emitted when the JupyterLab theme changes, so charts re-render with its colors. */
export const themeChanged = new Signal<object, void>({});

type Spec = Record<string, any>;

function cssVar(name: string, fallback: string): string {
  const value = getComputedStyle(document.body).getPropertyValue(name).trim();
  return value || fallback;
}

/** A Vega config that follows the current theme. */
export function themeConfig(): Spec {
  const text = cssVar('--jp-ui-font-color1', '#333');
  const muted = cssVar('--jp-ui-font-color2', '#666');
  const grid = cssVar('--jp-border-color2', '#ddd');
  const font = cssVar('--jp-ui-font-family', 'sans-serif');
  return {
    background: 'transparent',
    font,
    axis: {
      labelColor: muted,
      titleColor: text,
      gridColor: grid,
      domainColor: grid,
      tickColor: grid,
      labelFontSize: 10,
      titleFontSize: 11
    },
    legend: {
      labelColor: text,
      titleColor: text,
      labelFontSize: 10,
      titleFontSize: 11,
      labelLimit: 160
    },
    title: { color: text },
    view: { stroke: 'transparent' },
    range: { category: { scheme: 'tableau10' } }
  };
}

/** One line of a metric-over-step chart. */
export interface ISeries {
  label: string;
  points: IMetricPoint[];
}

/** Points usable in a chart (finite values; missing steps numbered by position). */
function rows(series: ISeries[]): { run: string; step: number; value: number }[] {
  const out: { run: string; step: number; value: number }[] = [];
  for (const s of series) {
    s.points.forEach((p, index) => {
      const value = asFinite(p.value);
      if (value !== null) {
        out.push({ run: s.label, step: typeof p.step === 'number' ? p.step : index, value });
      }
    });
  }
  return out;
}

/** A metric over steps, one colored line per run. */
export function lineSpec(metric: string, series: ISeries[]): Spec {
  const data = rows(series);
  const several = series.length > 1;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 'container',
    height: 180,
    autosize: { type: 'fit', contains: 'padding' },
    data: { values: data },
    mark: { type: 'line', point: data.length < 60, tooltip: true },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'value', type: 'quantitative', title: metric, scale: { zero: false } },
      ...(several
        ? {
            color: {
              field: 'run',
              type: 'nominal',
              title: 'run',
              legend: { orient: 'bottom', columns: 2 }
            }
          }
        : {})
    }
  };
}

/** One point per run: a param against a metric. */
export function scatterSpec(
  points: { run: string; x: unknown; y: unknown }[],
  xTitle: string,
  yTitle: string
): Spec {
  const numericX = points.every(p => asFinite(p.x) !== null);
  const values = points
    .map(p => ({ run: p.run, x: numericX ? asFinite(p.x) : String(p.x ?? ''), y: asFinite(p.y) }))
    .filter(p => p.y !== null);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 'container',
    height: 220,
    autosize: { type: 'fit', contains: 'padding' },
    data: { values },
    mark: { type: 'point', filled: true, size: 70, tooltip: true },
    encoding: {
      x: {
        field: 'x',
        type: numericX ? 'quantitative' : 'nominal',
        title: xTitle,
        scale: numericX ? { zero: false, nice: true, padding: 16 } : undefined
      },
      y: {
        field: 'y',
        type: 'quantitative',
        title: yTitle,
        scale: { zero: false, nice: true, padding: 16 }
      },
      color: {
        field: 'run',
        type: 'nominal',
        title: 'run',
        legend: { orient: 'bottom', columns: 2 }
      }
    }
  };
}

/** Handlers of a view's signals (e.g. a selection's), by signal name. */
export type SignalHandlers = { [name: string]: (value: unknown) => void };

/**
 * Render a spec into a node; returns a function that frees the view.
 *
 * @param signals - called with the new value whenever the named signal changes
 */
export async function renderChart(
  node: HTMLElement,
  spec: Spec,
  signals: SignalHandlers = {}
): Promise<() => void> {
  const { default: embed } = await import('vega-embed');
  const result = await embed(node, { ...spec, config: themeConfig() } as any, {
    actions: false,
    renderer: 'svg'
  });
  for (const [name, handler] of Object.entries(signals)) {
    result.view.addSignalListener(name, (_: string, value: unknown) => handler(value));
  }
  return () => result.finalize();
}
