/**
 * The drift between a run's recorded environment and the kernel it would be replayed in, as
 * the re-execute dialog shows it before the start.
 */
import React from 'react';

import type { IDrift } from '../../types';

/** The drift check's answer, as a list of differences. */
export function DriftView(props: { drift: IDrift }): JSX.Element {
  const { drift } = props;
  if (drift.remote) {
    return (
      <div className="nbtrace-muted">
        Not checked before the replay: the kernel runs on the {drift.remote}. The verdict lists
        every environment difference once it ran.
      </div>
    );
  }
  const pk = drift.packages ?? { changed: [], added: [], removed: [] };
  const items: string[] = [];
  if (drift.python) {
    items.push(`Python ${drift.python.recorded ?? '?'} → ${drift.python.current ?? '?'}`);
  }
  if (drift.platform) {
    items.push(`Platform ${drift.platform.recorded ?? '?'} → ${drift.platform.current ?? '?'}`);
  }
  for (const p of pk.changed ?? []) {
    items.push(`${p.name} ${p.recorded ?? '?'} → ${p.current ?? '?'}`);
  }
  for (const p of pk.added ?? []) {
    items.push(`${p.name} ${p.current ?? ''} added`);
  }
  for (const p of pk.removed ?? []) {
    items.push(`${p.name} ${p.recorded ?? ''} removed`);
  }
  for (const [kind, files] of [
    ['Data file', drift.inputs ?? []],
    ['Module', drift.modules ?? []]
  ] as const) {
    for (const f of files) {
      items.push(
        f.current === null
          ? `${kind} ${f.path} is missing`
          : `${kind} ${f.path} changed since the run`
      );
    }
  }
  const missing =
    drift.nbtrace_installed === false ? (
      <div className="nbtrace-error">
        nbtrace is not installed in the kernel{drift.kernel_name ? ` ${drift.kernel_name}` : ''}:
        the re-execution cannot record a run.
      </div>
    ) : null;
  if (items.length === 0) {
    return (
      <>
        {missing}
        <div className="nbtrace-ok">
          No drift: the kernel{drift.kernel_name ? ` ${drift.kernel_name}` : ''} has the recorded
          environment.
        </div>
      </>
    );
  }
  return (
    <div className="nbtrace-Drift">
      {missing}
      <div className="nbtrace-warn">
        The environment drifted since the run
        {drift.kernel_name ? ` (kernel ${drift.kernel_name})` : ''}: {items.length} difference
        {items.length === 1 ? '' : 's'}.
      </div>
      <ul>
        {items.slice(0, 50).map(item => (
          <li key={item}>{item}</li>
        ))}
        {items.length > 50 && <li>… and {items.length - 50} more</li>}
      </ul>
    </div>
  );
}

/** The dialog's "Environment" section: the check's progress, its failure or its answer. */
export function DriftSection(props: {
  drift: { value: IDrift | null; error: Error | null; loading: boolean };
}): JSX.Element {
  const { drift } = props;
  return (
    <section className="nbtrace-Rerun-drift" aria-label="Environment drift">
      <h3>Environment</h3>
      {drift.loading && <div className="nbtrace-muted">Checking the environment…</div>}
      {drift.error && (
        <div className="nbtrace-error">Drift check failed: {drift.error.message}</div>
      )}
      {drift.value && <DriftView drift={drift.value} />}
    </section>
  );
}
