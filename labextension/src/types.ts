/**
 * Types of the nbtrace REST API (`/nbtrace/api`), as described in design.md.
 *
 * Values coming from the store keep their JSON type; non-finite numbers arrive as the
 * strings `"NaN"`, `"Infinity"` and `"-Infinity"` (see {@link format.ts}).
 */

/** A JSON value as stored for params, metrics and tags. */
export type JSONScalar = string | number | boolean | null;
/** Any JSON value (params may hold lists or objects). */
export type JSONValue = JSONScalar | JSONValue[] | { [key: string]: JSONValue };

/** Run statuses. */
export type RunStatus = 'running' | 'finished' | 'failed' | 'crashed';

/** Verdict statuses of a re-execution. */
export type VerdictStatus =
  'reproduced' | 'within_tolerance' | 'diverged' | 'failed' | 'within_noise';

/** One row of `GET runs`. */
export interface IRunSummary {
  id: string;
  name: string;
  experiment: string | null;
  status: RunStatus | string;
  started_at: string | null;
  ended_at: string | null;
  duration_s?: number | string | null;
  user?: string | null;
  host?: string | null;
  params: { [key: string]: JSONValue };
  metrics: { [key: string]: JSONValue };
  tags: { [key: string]: JSONValue };
  /** The run this one re-executes. */
  parent?: string | null;
  /** The run this one is nested in (`start_run(nested=True)`, MLflow's parent run). */
  nested_in?: string | null;
  notebook_path?: string | null;
  verdict_status?: VerdictStatus | string | null;
}

/** `GET runs` response. */
export interface IRunsPage {
  runs: IRunSummary[];
  total: number;
  /** False when `total` is a lower bound: more than `total` runs match (a large filtered store). */
  total_exact?: boolean;
}

/** A metric point. */
export interface IMetricPoint {
  step: number | null;
  value: number | string | null;
  timestamp?: number | string | null;
}

/** Per-metric part of a verdict. */
export interface IVerdictMetric {
  original: JSONValue;
  new: JSONValue;
  delta: JSONValue;
}

/** The reproducibility verdict of a re-execution. */
export interface IVerdict {
  status: VerdictStatus | string;
  metrics: { [key: string]: IVerdictMetric };
  environment_diff?: { [key: string]: any } | null;
  code_matches?: boolean | null;
  error?: string | null;
  first_divergence?: IFirstDivergence | null;
  causes?: ICause[] | null;
  outputs?: { seq: number; position: number; status: string }[] | null;
  noise?: { [key: string]: INoise } | null;
  override_without_effect?: boolean;
  repeats?: number;
}

/** The first replayed cell whose outputs differ (`verdict.first_divergence`). */
export interface IFirstDivergence {
  seq: number;
  position: number;
  first_line: string;
  original: string;
  new: string;
  /** Raster images as `data:` URLs. */
  original_images?: string[];
  new_images?: string[];
}

/** What differs between the original and the replay (`verdict.causes`). */
export interface ICause {
  kind: 'input' | 'module' | 'package' | 'env' | 'code' | 'override' | string;
  name: string;
  original?: JSONValue;
  new?: JSONValue;
  diff?: string | null;
}

/** A metric's spread over repeated replays. */
export interface INoise {
  min: number | null;
  max: number | null;
  mean: number | null;
  std: number | null;
  original?: number | null;
  within?: boolean;
}

/** A data file or local module that changed since the run (`drift.inputs` / `.modules`). */
export interface IFileDrift {
  path: string;
  recorded: string | null;
  current: string | null;
  declared?: boolean;
  diff?: string | null;
}

/** A recorded cell. */
export interface IRecordedCell {
  seq: number;
  execution_count: number | null;
  cell_id: string | null;
  sha256: string;
  source: string;
  error: boolean;
  in_run: boolean;
}

/** The kernel environment of a run. */
export interface IEnvironment {
  python?: string | null;
  executable?: string | null;
  platform?: string | null;
  hostname?: string | null;
  cpu?: string | null;
  cpu_count?: number | null;
  memory_bytes?: number | null;
  gpus?: JSONValue[] | null;
  packages?: { [name: string]: string } | null;
  imported?: { [name: string]: string | null } | null;
  env_vars?: { [name: string]: string } | null;
}

/** Git state of the notebook's work tree. */
export interface IGitState {
  commit?: string | null;
  branch?: string | null;
  dirty?: boolean | null;
  diff?: string | null;
  remote?: string | null;
}

/** A child run (re-execution) in the run object. */
export interface IChildRun extends IRunSummary {
  verdict?: IVerdict | null;
}

/** The whole run (`GET runs/{id}`). */
export interface IRun extends IRunSummary {
  note?: string | null;
  verdict?: IVerdict | null;
  notebook?: { path?: string | null; cells?: string[] | null } | null;
  cells?: IRecordedCell[] | null;
  environment?: IEnvironment | null;
  git?: IGitState | null;
  resources?: {
    wall_s?: number | null;
    cpu_s?: number | null;
    peak_rss_bytes?: number | null;
  } | null;
  artifacts?: { name: string; sha256?: string; size?: number }[] | null;
  inputs?: { path: string; sha256?: string; size?: number }[] | null;
  children?: IChildRun[] | null;
  /** The runs nested in this one. */
  nested_runs?: IRunSummary[] | null;
  /** Free-form details; `mlflow_params`: params only MLflow's client logged (not overridable). */
  extra?: { [key: string]: JSONValue } | null;
}

/** `PATCH runs/{id}` body. */
export interface IRunPatch {
  name?: string;
  tags?: { [key: string]: JSONValue | null };
  note?: string;
}

/** A value per run id. */
export type PerRun<T> = { [runId: string]: T };

/** `GET compare` response. */
export interface ICompare {
  runs: IRunSummary[];
  params: { key: string; values: PerRun<JSONValue>; differs: boolean }[];
  metrics: {
    key: string;
    values: PerRun<JSONValue>;
    best: string | null;
    goal: 'min' | 'max' | string;
    differs: boolean;
  }[];
  series: { [key: string]: PerRun<IMetricPoint[]> };
  code: {
    base: string;
    diffs: PerRun<ICellDiff[]>;
  };
  environment: {
    python: PerRun<string | null>;
    platform: PerRun<string | null>;
    packages: { name: string; values: PerRun<string | null> }[];
    differs: boolean;
  };
}

/** One cell of a code comparison. */
export interface ICellDiff {
  op: 'equal' | 'changed' | 'added' | 'removed' | string;
  a: IRecordedCell | null;
  b: IRecordedCell | null;
  diff: string;
}

/** A recorded / current pair. */
export interface IDriftPair {
  recorded: string | null;
  current: string | null;
}

/** `GET runs/{id}/drift` response. */
export interface IDrift {
  python: IDriftPair | null;
  platform: IDriftPair | null;
  packages: {
    changed: { name: string; recorded: string | null; current: string | null }[];
    added: { name: string; recorded?: string | null; current: string | null }[];
    removed: { name: string; recorded: string | null; current?: string | null }[];
  };
  kernel_name?: string | null;
  /** False when the kernel that would re-run cannot import nbtrace. */
  nbtrace_installed?: boolean;
  /** Set when the kernel runs on a gateway: its environment is not probed before the replay. */
  remote?: string;
  inputs?: IFileDrift[];
  modules?: IFileDrift[];
  parameters?: {
    [name: string]: { overridable: boolean; reason?: string | null };
  };
}

/** Re-execution job states. */
export type JobState = 'queued' | 'running' | 'done' | 'error' | 'cancelled';

/** `GET jobs/{id}` response. */
export interface IJob {
  id: string;
  state: JobState | string;
  progress?: { done: number; total: number } | null;
  run: string | null;
  verdict: IVerdict | null;
  error: string | null;
  source_run?: string | null;
}

/** A sweep (`GET sweeps/{id}`): one run re-executed once per parameter set. */
export interface ISweep {
  id: string;
  source_run: string;
  state: JobState | string;
  progress: { done: number; total: number; running?: number; failed?: number };
  parallel: number;
  sets: { [key: string]: JSONValue }[];
  jobs: IJob[];
  runs: string[];
  tag?: { [key: string]: string };
}
