/**
 * Status, timing, resources, environment (with a package search) and git state of a run.
 */
import React, { useState } from 'react';

import { durationBetween, formatBytes, formatDuration, formatValue, shortHash } from '../../format';
import type { IRun } from '../../types';
import { statusClass } from '../RunsTable';
import { Code, KeyValueTable, Section } from './common';

/** Status and timing, resources. */
export function StatusSection(props: { run: IRun }): JSX.Element {
  const { run } = props;
  const r = run.resources ?? {};
  const duration = run.duration_s ?? durationBetween(run.started_at, run.ended_at);
  const rows: [string, React.ReactNode][] = [
    ['status', <span className={statusClass(run.status)}>{run.status}</span>],
    ['started', run.started_at ?? ''],
    ['ended', run.ended_at ?? (run.status === 'running' ? 'running…' : '')],
    ['duration', formatDuration(duration)],
    ['user', `${run.user ?? ''}${run.host ? ` @ ${run.host}` : ''}`],
    ['experiment', run.experiment ?? ''],
    ['notebook', run.notebook?.path ?? run.notebook_path ?? ''],
    ['wall time', formatDuration(r.wall_s)],
    ['CPU time', formatDuration(r.cpu_s)],
    ['peak memory', formatBytes(r.peak_rss_bytes)]
  ];
  return (
    <Section title="Status and resources" className="nbtrace-StatusSection">
      <KeyValueTable label="Status and resources" rows={rows.filter(([, v]) => v !== '')} />
    </Section>
  );
}

/** Environment of the kernel, with a searchable package list. */
export function EnvironmentSection(props: { run: IRun }): JSX.Element {
  const env = props.run.environment ?? {};
  const [search, setSearch] = useState('');
  const packages = Object.entries(env.packages ?? {}).sort(([a], [b]) =>
    a.toLowerCase().localeCompare(b.toLowerCase())
  );
  const needle = search.trim().toLowerCase();
  const shown = needle ? packages.filter(([n]) => n.toLowerCase().includes(needle)) : packages;
  const imported = Object.entries(env.imported ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const rows: [string, React.ReactNode][] = [
    ['python', env.python ?? ''],
    ['executable', env.executable ?? ''],
    ['platform', env.platform ?? ''],
    ['hostname', env.hostname ?? ''],
    ['CPU', `${env.cpu ?? ''}${env.cpu_count ? ` (${env.cpu_count} cores)` : ''}`],
    ['memory', formatBytes(env.memory_bytes)],
    ['GPUs', (env.gpus ?? []).map(g => formatValue(g as any)).join(', ') || 'none']
  ];
  return (
    <Section title="Environment" className="nbtrace-EnvironmentSection">
      <KeyValueTable label="Environment" rows={rows.filter(([, v]) => v !== '')} />
      {imported.length > 0 && (
        <>
          <h4>Imported modules</h4>
          <div className="nbtrace-Chips" aria-label="Imported modules">
            {imported.map(([name, version]) => (
              <span key={name} className="nbtrace-Chip">
                {name}
                {version ? ` ${version}` : ''}
              </span>
            ))}
          </div>
        </>
      )}
      {Object.keys(env.env_vars ?? {}).length > 0 && (
        <>
          <h4>Environment variables</h4>
          <KeyValueTable
            label="Environment variables"
            rows={Object.entries(env.env_vars ?? {}).map(([k, v]) => [k, v])}
          />
        </>
      )}
      <h4>
        Installed packages <span className="nbtrace-muted">({packages.length})</span>
      </h4>
      <input
        type="search"
        className="jp-mod-styled nbtrace-PackageSearch"
        aria-label="Search packages"
        placeholder="Search packages"
        value={search}
        onChange={e => setSearch(e.currentTarget.value)}
      />
      <div className="nbtrace-Packages">
        <KeyValueTable
          label="Installed packages"
          empty={needle ? 'No package matches.' : 'No packages recorded.'}
          rows={shown.map(([n, v]) => [n, v])}
        />
      </div>
    </Section>
  );
}

/** Git state of the notebook's work tree. */
export function GitSection(props: { run: IRun }): JSX.Element {
  const git = props.run.git;
  return (
    <Section title="Git" className="nbtrace-GitSection" open={!!git}>
      {git ? (
        <>
          <KeyValueTable
            label="Git"
            rows={[
              ['commit', <span title={git.commit ?? ''}>{shortHash(git.commit, 10)}</span>],
              ['branch', git.branch ?? ''],
              ['dirty', git.dirty ? 'yes (uncommitted changes)' : 'no'],
              ['remote', git.remote ?? '']
            ]}
          />
          {git.diff && (
            <details className="nbtrace-GitDiff">
              <summary>Uncommitted diff</summary>
              <Code source={git.diff} />
            </details>
          )}
        </>
      ) : (
        <div className="nbtrace-muted">The notebook was not in a git work tree.</div>
      )}
    </Section>
  );
}
