/**
 * Formatting helpers shared by the views. Everything returns plain strings: values are
 * always rendered as React text, never as HTML.
 */
import type { JSONValue } from './types';

/** The strings the server uses for non-finite numbers. */
const NON_FINITE: { [key: string]: number } = {
  NaN: NaN,
  Infinity: Infinity,
  '-Infinity': -Infinity
};

/**
 * A metric or param value as a number when it is one (including the server's
 * `"NaN"`/`"Infinity"` encodings), else `null`.
 */
export function asNumber(value: unknown): number | null {
  if (typeof value === 'number') {
    return value;
  }
  if (typeof value === 'string' && value in NON_FINITE) {
    return NON_FINITE[value];
  }
  return null;
}

/** A finite number, or null (for charts, which cannot plot NaN). */
export function asFinite(value: unknown): number | null {
  const n = asNumber(value);
  return n !== null && Number.isFinite(n) ? n : null;
}

/** Display a param/metric/tag value. */
export function formatValue(value: JSONValue | undefined): string {
  if (value === undefined) {
    return '';
  }
  if (value === null) {
    return 'null';
  }
  if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      return String(value);
    }
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-4 || abs >= 1e7)) {
      return value.toExponential(4);
    }
    return String(Number(value.toPrecision(6)));
  }
  if (typeof value === 'string') {
    return value;
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  return JSON.stringify(value);
}

/** Two values are the same JSON value. */
export function sameValue(a: JSONValue | undefined, b: JSONValue | undefined): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** A duration in seconds as `1.2 s`, `3 min 4 s`, `2 h 3 min`. */
export function formatDuration(seconds: unknown): string {
  const s = asNumber(seconds);
  if (s === null || !Number.isFinite(s)) {
    return '';
  }
  if (s < 10) {
    return `${s.toFixed(s < 1 ? 2 : 1)} s`;
  }
  if (s < 60) {
    return `${Math.round(s)} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** Seconds between two ISO dates (or now for a running run). */
export function durationBetween(start: string | null, end: string | null): number | null {
  if (!start) {
    return null;
  }
  const a = Date.parse(start);
  const b = end ? Date.parse(end) : Date.now();
  return Number.isNaN(a) || Number.isNaN(b) ? null : (b - a) / 1000;
}

/** An ISO UTC timestamp in the user's locale, compact. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay
    ? date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : date.toLocaleString(undefined, {
        year: 'numeric',
        month: 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit'
      });
}

/** Bytes as `1.5 GiB`. */
export function formatBytes(bytes: unknown): string {
  const n = asNumber(bytes);
  if (n === null || !Number.isFinite(n)) {
    return '';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** The first characters of a hash. */
export function shortHash(hash: string | null | undefined, length = 12): string {
  return hash ? hash.slice(0, length) : '';
}

/** A column key such as `params.alpha` split into its group and name. */
export function splitColumn(column: string): { group: 'params' | 'metrics' | 'tags'; key: string } {
  const dot = column.indexOf('.');
  const group = column.slice(0, dot) as 'params' | 'metrics' | 'tags';
  return { group, key: column.slice(dot + 1) };
}
