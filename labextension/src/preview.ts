/**
 * Turning an artifact's bytes into something safe to show.
 *
 * Artifacts are user content. Nothing here gives them JupyterLab's origin: raster images
 * become `data:` URLs (opaque origin; browsers refuse to open them as a top-level page), SVG
 * is rasterised to a PNG `data:` URL through a canvas (an `<img>` never runs its script, and
 * the picture the user can "open in a new tab" is a PNG), and text, JSON and CSV are decoded
 * to strings that React renders as text.
 */

/** How an artifact is previewed. */
export type PreviewKind = 'image' | 'svg' | 'text' | 'json' | 'csv' | 'notebook' | 'none';

const RASTER = /\.(png|jpe?g|gif|webp|bmp|avif)$/i;
const TEXT = /\.(txt|log|md|rst|py|r|jl|sh|ya?ml|toml|cfg|ini|conf|out|err|tex)$/i;

/** Raster types that may be shown from a `data:` URL. */
const RASTER_TYPES: { [ext: string]: string } = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  bmp: 'image/bmp',
  avif: 'image/avif'
};

/** Largest artifact previewed as text, JSON, CSV or notebook (bytes). */
export const PREVIEW_LIMIT = 5 * 1024 * 1024;
/** Most characters of a text preview. */
export const TEXT_LIMIT = 100_000;
/** Rows of a CSV preview. */
export const CSV_ROWS = 20;

/** The preview kind of an artifact, from its name. */
export function previewKind(name: string): PreviewKind {
  if (RASTER.test(name)) {
    return 'image';
  }
  if (/\.svgz?$/i.test(name)) {
    return 'svg';
  }
  if (/\.json$/i.test(name)) {
    return 'json';
  }
  if (/\.(csv|tsv)$/i.test(name)) {
    return 'csv';
  }
  if (/\.ipynb$/i.test(name)) {
    return 'notebook';
  }
  if (TEXT.test(name)) {
    return 'text';
  }
  return 'none';
}

/** Base64 of bytes (chunked: `String.fromCharCode` takes a bounded argument list). */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

/**
 * A `data:` URL of a raster image, typed from the name's extension (never from the bytes or
 * the server, so an SVG or HTML file named `.png` is still only decoded as an image).
 */
export function rasterDataURL(name: string, bytes: Uint8Array): string {
  const ext = (name.split('.').pop() ?? '').toLowerCase();
  const type = RASTER_TYPES[ext] ?? 'application/octet-stream';
  return `data:${type};base64,${toBase64(bytes)}`;
}

/** Longest side of a rasterised SVG, in CSS pixels. */
const SVG_MAX_SIDE = 1200;

/**
 * Rasterise an SVG to a PNG `data:` URL.
 *
 * The SVG is decoded as an image (script never runs in an image), drawn on a canvas and read
 * back as PNG; the SVG itself is never put in the page or behind a URL of its own type.
 *
 * @throws when the SVG cannot be decoded or the canvas refuses to export it
 */
export async function rasteriseSVG(bytes: Uint8Array): Promise<string> {
  const source = `data:image/svg+xml;base64,${toBase64(bytes)}`;
  const image = new Image();
  image.decoding = 'async';
  const loaded = new Promise<void>((resolve, reject) => {
    image.onload = () => resolve();
    image.onerror = () => reject(new Error('the SVG cannot be decoded'));
  });
  image.src = source;
  await loaded;
  const width = image.naturalWidth || 300;
  const height = image.naturalHeight || 150;
  const scale = Math.min(1, SVG_MAX_SIDE / Math.max(width, height));
  const ratio = Math.min(2, window.devicePixelRatio || 1);
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(width * scale * ratio));
  canvas.height = Math.max(1, Math.round(height * scale * ratio));
  const context = canvas.getContext('2d');
  if (!context) {
    throw new Error('no canvas to draw the SVG');
  }
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  image.src = '';
  return canvas.toDataURL('image/png');
}

/** Bytes as UTF-8 text, cut at {@link TEXT_LIMIT} characters. */
export function decodeText(bytes: Uint8Array): { text: string; truncated: boolean } {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  return text.length > TEXT_LIMIT
    ? { text: text.slice(0, TEXT_LIMIT), truncated: true }
    : { text, truncated: false };
}

/** JSON pretty-printed, or the text as is when it does not parse. */
export function formatJSON(text: string): { text: string; valid: boolean } {
  try {
    return { text: JSON.stringify(JSON.parse(text), null, 2), valid: true };
  } catch {
    return { text, valid: false };
  }
}

/**
 * The first rows of a CSV (or TSV) document (RFC 4180: quoted fields, doubled quotes,
 * newlines inside quotes).
 *
 * @param maxRows - rows to return, the header included
 */
export function parseCSV(text: string, delimiter = ',', maxRows = CSV_ROWS + 1): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
    } else if (c === delimiter) {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') {
        i++;
      }
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
  }
  if (rows.length < maxRows && (field !== '' || row.length > 0)) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
