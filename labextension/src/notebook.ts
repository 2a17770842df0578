/**
 * Links between runs and notebooks: "what changed since this run" against an open
 * notebook, and "open as notebook" (a new notebook rebuilt from a run's recorded cells).
 */
import { PageConfig, PathExt } from '@jupyterlab/coreutils';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { Contents } from '@jupyterlab/services';

import { sha256Hex } from './hash';
import type { IRecordedCell, IRun, JSONValue } from './types';

/** A code cell of the notebook open now. */
export interface ICurrentCell {
  index: number;
  source: string;
  sha256: string;
}

/** One difference between the notebook saved at run start and the one open now. */
export interface ICellChange {
  kind: 'edited' | 'added' | 'removed';
  /** Position of the code cell in the current notebook (edited, added). */
  current?: ICurrentCell;
  /** Position in the recorded notebook (edited, removed). */
  recordedIndex?: number;
  /** The recorded hash (edited, removed). */
  recordedHash?: string;
}

/** Pick the notebook to compare with: one open at the run's path, else the current one. */
export function pickNotebook(
  tracker: INotebookTracker,
  runPath: string | null | undefined
): NotebookPanel | null {
  if (runPath) {
    const found = tracker.find(panel => {
      const p = panel.context.path;
      return p === runPath || runPath.endsWith(`/${p}`);
    });
    if (found) {
      return found;
    }
  }
  return tracker.currentWidget;
}

/** The code cells of an open notebook with their sha256. */
export async function currentCodeCells(panel: NotebookPanel): Promise<ICurrentCell[]> {
  const model = panel.content.model;
  if (!model) {
    return [];
  }
  const cells: { index: number; source: string }[] = [];
  let index = 0;
  for (const cell of model.cells) {
    if (cell.type === 'code') {
      cells.push({ index, source: cell.sharedModel.getSource() });
    }
    index++;
  }
  return Promise.all(cells.map(async c => ({ ...c, sha256: await sha256Hex(c.source) })));
}

/**
 * Align recorded hashes with the current cells (longest common subsequence); unmatched
 * cells in the same gap pair up as edits, the rest are additions or removals.
 */
export function diffCells(recorded: string[], current: ICurrentCell[]): ICellChange[] {
  const n = recorded.length;
  const m = current.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] =
        recorded[i] === current[j].sha256
          ? lcs[i + 1][j + 1] + 1
          : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const changes: ICellChange[] = [];
  let i = 0;
  let j = 0;
  const removed: number[] = [];
  const added: number[] = [];
  const flush = () => {
    const pairs = Math.min(removed.length, added.length);
    for (let k = 0; k < pairs; k++) {
      changes.push({
        kind: 'edited',
        current: current[added[k]],
        recordedIndex: removed[k],
        recordedHash: recorded[removed[k]]
      });
    }
    for (const r of removed.slice(pairs)) {
      changes.push({ kind: 'removed', recordedIndex: r, recordedHash: recorded[r] });
    }
    for (const a of added.slice(pairs)) {
      changes.push({ kind: 'added', current: current[a] });
    }
    removed.length = 0;
    added.length = 0;
  };
  while (i < n || j < m) {
    if (i < n && j < m && recorded[i] === current[j].sha256) {
      flush();
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      added.push(j++);
    } else {
      removed.push(i++);
    }
  }
  flush();
  return changes;
}

const NON_FINITE_PY: { [key: string]: string } = {
  NaN: "float('nan')",
  Infinity: "float('inf')",
  '-Infinity': "float('-inf')"
};

/** A JSON value as a Python literal. */
export function toPython(value: JSONValue): string {
  if (value === null) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (typeof value === 'number') {
    return Number.isFinite(value) ? JSON.stringify(value) : NON_FINITE_PY[String(value)];
  }
  if (typeof value === 'string') {
    return NON_FINITE_PY[value] ?? JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(toPython).join(', ')}]`;
  }
  return `{${Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}: ${toPython(v)}`)
    .join(', ')}}`;
}

/**
 * Split `a=1 b=f(x, y) c` like the `%log_param` magic: on whitespace outside brackets and
 * strings, `a = 1` kept together. Returns null when the line is not understood.
 */
export function splitAssignments(line: string): string[] | null {
  const chunks: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let current = '';
  for (let k = 0; k < line.length; k++) {
    const ch = line[k];
    if (quote) {
      current += ch;
      if (ch === '\\') {
        current += line[++k] ?? '';
      } else if (ch === quote) {
        quote = null;
      }
      continue;
    }
    if (ch === '#') {
      return null;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
    } else if ('([{'.includes(ch)) {
      depth++;
    } else if (')]}'.includes(ch)) {
      depth--;
    }
    if (/\s/.test(ch) && depth === 0) {
      if (current) {
        chunks.push(current);
        current = '';
      }
    } else {
      current += ch;
    }
  }
  if (quote || depth !== 0) {
    return null;
  }
  if (current) {
    chunks.push(current);
  }
  const merged: string[] = [];
  const openAssign = (c: string) => c.endsWith('=') && !/(==|!=|<=|>=)$/.test(c);
  for (const c of chunks) {
    if (
      merged.length &&
      (openAssign(merged[merged.length - 1]) || (c.startsWith('=') && !c.startsWith('==')))
    ) {
      merged[merged.length - 1] += c;
    } else {
      merged.push(c);
    }
  }
  return merged;
}

/**
 * Rewrite `%log_param NAME=EXPR` so NAME is taken from the parameters cell: the recorded
 * expression stays visible in a comment above the line.
 */
export function rewriteLogParams(source: string, params: Set<string>): string {
  return source
    .split('\n')
    .map(line => {
      const match = /^(\s*)%log_param\s+(.*)$/.exec(line);
      if (!match) {
        return line;
      }
      const pieces = splitAssignments(match[2]);
      if (!pieces) {
        return line;
      }
      let changed = false;
      const rewritten = pieces.map(piece => {
        const eq = piece.indexOf('=');
        const name = (eq >= 0 ? piece.slice(0, eq) : piece).trim();
        if (eq >= 0 && params.has(name) && /^[A-Za-z_]\w*$/.test(name)) {
          changed = true;
          return name;
        }
        return piece;
      });
      if (!changed) {
        return line;
      }
      return `${match[1]}# nbtrace: recorded as: %log_param ${match[2]}\n${match[1]}%log_param ${rewritten.join(' ')}`;
    })
    .join('\n');
}

/** Which recorded cells go into the new notebook. */
export type OpenMode = 'all' | 'in_run';

/** The nbformat JSON of a notebook rebuilt from a run. */
export function notebookFromRun(run: IRun, mode: OpenMode): Record<string, unknown> {
  const params = run.params ?? {};
  const names = new Set(Object.keys(params));
  const lines = Object.entries(params).map(([k, v]) =>
    /^[A-Za-z_]\w*$/.test(k)
      ? `${k} = ${toPython(v)}`
      : `# ${JSON.stringify(k)} is not a valid name`
  );
  const recorded: IRecordedCell[] = (run.cells ?? [])
    .filter(c => mode === 'all' || c.in_run)
    .sort((a, b) => a.seq - b.seq);
  const cells: Record<string, unknown>[] = [
    {
      cell_type: 'markdown',
      metadata: {},
      source:
        `Rebuilt by nbtrace from run \`${run.id}\` (${(run.name ?? '').replace(/[`\n]/g, ' ')}), ` +
        `${mode === 'all' ? 'every cell executed up to the end of the run' : 'the cells of the run'}, ` +
        'in execution order.'
    },
    {
      cell_type: 'code',
      execution_count: null,
      metadata: { tags: ['parameters'] },
      outputs: [],
      source: ['# Parameters of the run (edit and run all)', ...lines].join('\n')
    },
    ...recorded.map(cell => ({
      cell_type: 'code',
      execution_count: null,
      metadata: {
        tags: cell.error ? ['raises-exception'] : [],
        nbtrace: { seq: cell.seq, sha256: cell.sha256, in_run: cell.in_run }
      },
      outputs: [],
      source: rewriteLogParams(cell.source ?? '', names)
    }))
  ];
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' },
      language_info: { name: 'python' },
      nbtrace: { source_run: run.id }
    },
    cells
  };
}

/**
 * Directory (relative to the server root) where the rebuilt notebook goes: next to the run's
 * notebook when it lives under the server root, else the root itself.
 */
export function targetDirectory(
  run: IRun,
  serverRoot = PageConfig.getOption('serverRoot')
): string {
  let path = (run.notebook?.path ?? run.notebook_path ?? '').replace(/\\/g, '/');
  const root = serverRoot.replace(/\\/g, '/').replace(/\/+$/, '');
  const absolute = path.startsWith('/') || /^[A-Za-z]:\//.test(path);
  if (absolute) {
    if (!root || !path.startsWith(`${root}/`)) {
      return '';
    }
    path = path.slice(root.length + 1);
  }
  return path ? PathExt.dirname(path) : '';
}

/**
 * Save a new notebook rebuilt from a run through the contents API.
 *
 * @returns the path of the new notebook
 */
export async function createNotebookFromRun(
  contents: Contents.IManager,
  run: IRun,
  mode: OpenMode
): Promise<string> {
  const dir = targetDirectory(run);
  const base = `${(run.name || 'run').replace(/[^\w.-]+/g, '_').slice(0, 60)}-${run.id.slice(0, 8)}`;
  let path = PathExt.join(dir, `${base}.ipynb`);
  for (let k = 1; k < 100; k++) {
    try {
      await contents.get(path, { content: false });
      path = PathExt.join(dir, `${base}-${k}.ipynb`);
    } catch {
      break;
    }
  }
  await contents.save(path, {
    type: 'notebook',
    format: 'json',
    content: notebookFromRun(run, mode) as any
  });
  return path;
}
