/**
 * The parts of a verdict that explain it: causes, the first divergent cell's output (original
 * and re-execution side by side, images too), the run-to-run noise, and overrides without
 * effect.
 *
 * Outputs are user content: text is rendered as text, and images only from `data:` URLs of
 * raster types, so nothing a notebook displayed ever runs with the Lab's origin.
 */
import React from 'react';

import { formatValue } from '../format';
import type { ICause, IFirstDivergence, INoise, IVerdict, JSONValue } from '../types';

/** `data:` URLs of raster images only (no SVG, no HTML, no other scheme). */
const SAFE_IMAGE = /^data:image\/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]+$/;

/** Whether a URL may be shown as an image. */
export function isSafeImage(url: string): boolean {
  return SAFE_IMAGE.test(url);
}

function short(value: JSONValue | undefined): string {
  if (typeof value === 'string' && /^[0-9a-f]{64}$/.test(value)) {
    return value.slice(0, 12);
  }
  if (value === null || value === undefined) {
    return '—';
  }
  return formatValue(value);
}

/** One line per cause: `input data.csv: 1a2b… → 3c4d…`. */
export function causeText(c: ICause): string {
  if ((c.new === null || c.new === undefined) && (c.kind === 'input' || c.kind === 'module')) {
    return `${c.kind} ${c.name}: missing in the re-execution (was ${short(c.original)})`;
  }
  return `${c.kind} ${c.name}: ${short(c.original)} → ${short(c.new)}`;
}

function Causes(props: { causes: ICause[] }): JSX.Element {
  return (
    <section className="nbtrace-Verdict-causes" aria-label="Causes">
      <h4>What differs</h4>
      <ul>
        {props.causes.slice(0, 30).map((c, i) => (
          <li key={i}>
            <span className={`nbtrace-cause nbtrace-cause-${c.kind}`}>{causeText(c)}</span>
            {c.diff && (
              <details>
                <summary>diff</summary>
                <pre className="nbtrace-code">{c.diff}</pre>
              </details>
            )}
          </li>
        ))}
        {props.causes.length > 30 && <li>… and {props.causes.length - 30} more</li>}
      </ul>
    </section>
  );
}

function Side(props: { title: string; text: string; images?: string[] }): JSX.Element {
  const images = (props.images ?? []).filter(isSafeImage);
  return (
    <figure className="nbtrace-Divergence-side" aria-label={props.title}>
      <figcaption>{props.title}</figcaption>
      <pre className="nbtrace-code">{props.text || '(no output)'}</pre>
      {images.map((src, i) => (
        <img key={i} src={src} alt={`${props.title} image ${i + 1}`} />
      ))}
    </figure>
  );
}

/** Where it went wrong: the first cell whose outputs differ, both sides. */
export function Divergence(props: { first: IFirstDivergence }): JSX.Element {
  const { first } = props;
  return (
    <section className="nbtrace-Divergence" aria-label="First divergence">
      <h4>
        First divergence: cell {first.position} (seq {first.seq}) <code>{first.first_line}</code>
      </h4>
      <div className="nbtrace-Divergence-sides">
        <Side title="Original" text={first.original} images={first.original_images} />
        <Side title="Re-execution" text={first.new} images={first.new_images} />
      </div>
    </section>
  );
}

function Noise(props: { noise: { [key: string]: INoise }; repeats?: number }): JSX.Element {
  const rows = Object.entries(props.noise);
  return (
    <table className="nbtrace-Grid" aria-label="Run-to-run noise">
      <caption>Spread over {props.repeats ?? '?'} re-executions</caption>
      <thead>
        <tr>
          <th>metric</th>
          <th className="nbtrace-num">min</th>
          <th className="nbtrace-num">max</th>
          <th className="nbtrace-num">mean</th>
          <th className="nbtrace-num">std</th>
          <th>original</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([k, n]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td className="nbtrace-num">{formatValue(n.min)}</td>
            <td className="nbtrace-num">{formatValue(n.max)}</td>
            <td className="nbtrace-num">{formatValue(n.mean)}</td>
            <td className="nbtrace-num">{formatValue(n.std)}</td>
            <td>
              {formatValue(n.original ?? null)} {n.within ? '(within)' : '(outside)'}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Causes, first divergence, noise and override warnings of a verdict (nothing if none). */
export function VerdictExplanation(props: { verdict: IVerdict }): JSX.Element | null {
  const { verdict } = props;
  const causes = verdict.causes ?? [];
  const parts = [
    verdict.override_without_effect && (
      <div key="owe" className="nbtrace-warn" role="note">
        The edited parameters changed nothing the run produced (override_without_effect): the new
        run does not claim their values.
      </div>
    ),
    verdict.first_divergence && <Divergence key="fd" first={verdict.first_divergence} />,
    causes.length > 0 && <Causes key="causes" causes={causes} />,
    verdict.noise && Object.keys(verdict.noise).length > 0 && (
      <Noise key="noise" noise={verdict.noise} repeats={verdict.repeats} />
    )
  ].filter(Boolean);
  return parts.length ? <div className="nbtrace-Verdict-explanation">{parts}</div> : null;
}
