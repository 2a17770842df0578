/**
 * A Vega-Lite chart as a React component (re-rendered when the spec or the theme changes).
 */
import React, { useEffect, useRef, useState } from 'react';

import { renderChart, SignalHandlers, themeChanged } from '../charts';
import { useSignals } from '../hooks';

/** Props of {@link Chart}. */
export interface IChartProps {
  spec: Record<string, any>;
  /** Accessible description of the chart. */
  label: string;
  /** Listeners of the view's signals (the latest handlers are called). */
  signals?: SignalHandlers;
}

/** A chart. */
export function Chart(props: IChartProps): JSX.Element {
  useSignals(themeChanged);
  const node = useRef<HTMLDivElement>(null);
  const handlers = useRef<SignalHandlers>({});
  handlers.current = props.signals ?? {};
  const [error, setError] = useState<string | null>(null);
  // The spec of the latest render; the chart is drawn again only when its text changes.
  const spec = useRef(props.spec);
  spec.current = props.spec;
  const key = JSON.stringify(props.spec);
  const theme = document.body.dataset.jpThemeName ?? '';

  useEffect(() => {
    let free: (() => void) | null = null;
    let live = true;
    if (node.current) {
      const signals: SignalHandlers = {};
      for (const name of Object.keys(handlers.current)) {
        signals[name] = value => handlers.current[name]?.(value);
      }
      renderChart(node.current, spec.current, signals).then(
        f => (live ? (free = f) : f()),
        e => live && setError(String(e?.message ?? e))
      );
    }
    return () => {
      live = false;
      free?.();
    };
  }, [key, theme]);

  return (
    <div className="nbtrace-Chart" role="img" aria-label={props.label}>
      <div ref={node} className="nbtrace-Chart-view" />
      {error && <div className="nbtrace-error">Chart failed: {error}</div>}
    </div>
  );
}
