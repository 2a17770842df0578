/**
 * Typed access to the nbtrace server extension (`/nbtrace/api/...`).
 *
 * Every request goes through `ServerConnection.makeRequest`, which adds the Jupyter token or
 * cookie and the XSRF header. Errors are turned into {@link NbtraceError}s carrying the
 * server's JSON `{"message"}`, or a clear "not installed" message when the namespace
 * itself is missing.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  ICompare,
  IDrift,
  IJob,
  IMetricPoint,
  IRun,
  IRunPatch,
  IRunsPage,
  JSONValue
} from './types';

/** The URL namespace of the server extension. */
export const API_NAMESPACE = 'nbtrace/api';

/** Message shown when the server extension does not answer. */
export const NOT_INSTALLED_MESSAGE =
  'nbtrace server extension is not installed (or not enabled) on this Jupyter server. ' +
  'Install the nbtrace Python package in the environment running JupyterLab and restart it.';

/** Why a request failed. */
export type NbtraceErrorKind = 'not-installed' | 'server' | 'network' | 'unavailable';

/** An error of the nbtrace API, with the message to show to the user. */
export class NbtraceError extends Error {
  /**
   * @param message - text for the user (the server's message when it sent one)
   * @param status - HTTP status, or 0 for network failures
   * @param kind - category of the failure
   */
  constructor(
    message: string,
    readonly status: number,
    readonly kind: NbtraceErrorKind
  ) {
    super(message);
    this.name = 'NbtraceError';
  }
}

let settingsOverride: ServerConnection.ISettings | null = null;

/** The server settings used by all requests (created once, lazily). */
export function serverSettings(): ServerConnection.ISettings {
  if (!settingsOverride) {
    settingsOverride = ServerConnection.makeSettings();
  }
  return settingsOverride;
}

/** Use the application's server settings (called once at activation). */
export function setServerSettings(settings: ServerConnection.ISettings): void {
  settingsOverride = settings;
}

/** The full URL of an API path such as `runs/abc`. */
export function apiURL(path: string): string {
  return URLExt.join(serverSettings().baseUrl, API_NAMESPACE, path);
}

async function readMessage(response: Response): Promise<string | null> {
  const text = await response.text().catch(() => '');
  if (!text) {
    return null;
  }
  try {
    const data = JSON.parse(text);
    if (data && typeof data.message === 'string' && data.message) {
      return data.message;
    }
    if (data && typeof data.reason === 'string' && data.reason) {
      return data.reason;
    }
  } catch {
    // not JSON: the Jupyter server's HTML error page
  }
  return null;
}

/**
 * Send a request to the server extension and return the raw `Response` when it is OK.
 *
 * @param path - path under `/nbtrace/api`, with its query string
 * @param init - fetch options
 * @throws {@link NbtraceError} for any non-2xx answer or a network failure
 */
export async function requestRaw(path: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  if (typeof init.body === 'string') {
    const headers = new Headers(init.headers);
    if (!headers.has('Content-Type')) {
      headers.set('Content-Type', 'application/json');
    }
    init = { ...init, headers };
  }
  try {
    response = await ServerConnection.makeRequest(apiURL(path), init, serverSettings());
  } catch (error) {
    throw new NbtraceError(
      `Cannot reach the Jupyter server: ${(error as Error).message ?? error}`,
      0,
      'network'
    );
  }
  if (response.ok) {
    return response;
  }
  const message = await readMessage(response);
  if (response.status === 404 && message === null) {
    // No JSON error from nbtrace: the route itself does not exist.
    throw new NbtraceError(NOT_INSTALLED_MESSAGE, 404, 'not-installed');
  }
  if (response.status === 503) {
    throw new NbtraceError(message ?? 'The nbtrace store is not readable.', 503, 'unavailable');
  }
  throw new NbtraceError(
    message ?? `Request failed: ${response.status} ${response.statusText}`,
    response.status,
    'server'
  );
}

/**
 * Call the server extension and decode its JSON answer.
 *
 * @param path - path under `/nbtrace/api`, with its query string
 * @param init - fetch options; a `body` object is not serialized here, pass a string
 * @returns the decoded JSON body, or `undefined` for an empty (204) answer
 */
export async function requestAPI<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await requestRaw(path, init);
  const text = await response.text();
  if (!text) {
    return undefined as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new NbtraceError(
      'The nbtrace server sent a malformed answer.',
      response.status,
      'server'
    );
  }
}

function query(params: { [key: string]: string | number | undefined | null }): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') {
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

const enc = encodeURIComponent;

/** Options of {@link listRuns}. */
export interface IListRunsOptions {
  filter?: string;
  sort?: string;
  limit?: number;
  offset?: number;
}

/** `GET runs`. */
export function listRuns(options: IListRunsOptions, signal?: AbortSignal): Promise<IRunsPage> {
  return requestAPI<IRunsPage>(`runs${query({ ...options })}`, { signal });
}

/** `GET runs/{id}`. */
export function getRun(id: string, signal?: AbortSignal): Promise<IRun> {
  return requestAPI<IRun>(`runs/${enc(id)}`, { signal });
}

/** `GET runs/{id}/metrics/{key}`. */
export function getMetricSeries(id: string, key: string): Promise<IMetricPoint[]> {
  return requestAPI<IMetricPoint[]>(`runs/${enc(id)}/metrics/${enc(key)}`);
}

/** `PATCH runs/{id}`. */
export function patchRun(id: string, patch: IRunPatch): Promise<IRun> {
  return requestAPI<IRun>(`runs/${enc(id)}`, {
    method: 'PATCH',
    body: JSON.stringify(patch)
  });
}

/** `DELETE runs/{id}`. */
export async function deleteRun(id: string): Promise<void> {
  await requestAPI<void>(`runs/${enc(id)}`, { method: 'DELETE' });
}

/** `GET compare?ids=...`. */
export function compareRuns(ids: string[]): Promise<ICompare> {
  return requestAPI<ICompare>(`compare${query({ ids: ids.join(',') })}`);
}

/** `GET runs/{id}/drift`. */
export function getDrift(id: string, kernelName?: string): Promise<IDrift> {
  return requestAPI<IDrift>(`runs/${enc(id)}/drift${query({ kernel_name: kernelName })}`);
}

const FLOAT_MARK = '\u0000nbtrace-float:';

/**
 * JSON text of a rerun body in which the override values named in `floats` are written as
 * floating-point literals (`1.0`, not `1`): JavaScript has one number type, Python two, and
 * `alpha = 1` is not `alpha = 1.0` in the re-executed notebook.
 */
/** Options of a re-execution beyond its parameters. */
export interface IRerunOptions {
  /** Replay N times and judge the original against the run-to-run noise. */
  repeat?: number;
  /** Replay with the recorded sources of the run's local modules. */
  recordedModules?: boolean;
}

export function rerunBody(
  overrides: { [key: string]: JSONValue },
  floats: ReadonlySet<string> = new Set(),
  kernelName?: string,
  trust?: boolean,
  options: IRerunOptions = {}
): string {
  const marked: { [key: string]: JSONValue } = {};
  for (const [key, value] of Object.entries(overrides)) {
    marked[key] =
      floats.has(key) && typeof value === 'number' && Number.isInteger(value)
        ? `${FLOAT_MARK}${value}`
        : value;
  }
  const body: { [key: string]: unknown } = { overrides: marked };
  if (kernelName) {
    body.kernel_name = kernelName;
  }
  if (options.repeat && options.repeat > 1) {
    body.repeat = options.repeat;
  }
  if (options.recordedModules) {
    body.recorded_modules = true;
  }
  if (trust) {
    body.trust = true;
  }
  return JSON.stringify(body).replace(/"\\u0000nbtrace-float:(-?\d+)"/g, '$1.0');
}

/**
 * `POST runs/{id}/rerun`: returns the job id.
 *
 * @param floats - names of overrides to send as floats even when their value is integral
 * @param trust - the user read the code of a run recorded by someone else (or imported) and
 *   trusts it; without it such a request fails with a {@link TRUST_STATUS} error
 */
export async function startRerun(
  id: string,
  overrides: { [key: string]: JSONValue },
  floats?: ReadonlySet<string>,
  kernelName?: string,
  trust?: boolean,
  options?: IRerunOptions
): Promise<string> {
  const answer = await requestAPI<{ job: string }>(`runs/${enc(id)}/rerun`, {
    method: 'POST',
    body: rerunBody(overrides, floats, kernelName, trust, options)
  });
  return answer.job;
}

/** The status of a re-execution refused until the user trusts the run's code. */
export const TRUST_STATUS = 409;

/** Whether `error` is the server asking for explicit trust (not another 409). */
export function needsTrust(error: unknown): boolean {
  return (
    error instanceof NbtraceError &&
    error.status === TRUST_STATUS &&
    error.message.includes('"trust": true')
  );
}

/** `GET jobs/{id}`. */
export function getJob(job: string): Promise<IJob> {
  return requestAPI<IJob>(`jobs/${enc(job)}`);
}

/** `DELETE jobs/{id}`: cancel a re-execution. */
export async function cancelJob(job: string): Promise<void> {
  await requestAPI<void>(`jobs/${enc(job)}`, { method: 'DELETE' });
}

/**
 * Fetch an artifact with the Jupyter credentials and return an object URL for it.
 *
 * The caller owns the URL and must `URL.revokeObjectURL` it.
 *
 * @param asImage - type the blob as the artifact's image type, for an `<img>`
 */
export async function artifactObjectURL(
  id: string,
  name: string,
  asImage = false
): Promise<string> {
  const response = await requestRaw(`runs/${enc(id)}/artifacts/${enc(name)}`);
  let blob = await response.blob();
  // The server labels active content (SVG...) text/plain; an <img> never runs script, so
  // for display the real image type (sent in X-Artifact-Content-Type) is safe to use.
  const real = response.headers.get('X-Artifact-Content-Type') ?? '';
  if (asImage && real.startsWith('image/') && blob.type !== real) {
    blob = new Blob([blob], { type: real });
  }
  return URL.createObjectURL(blob);
}
