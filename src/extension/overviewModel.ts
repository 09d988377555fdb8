/**
 * Turns a checkpoint summary into what the overview webview shows. Pure (no 'vscode' import) so the
 * unit tests run it under plain Node.
 */
import * as path from 'node:path';
import type { CheckpointSummary } from '../core/checkpoint/types';
import { groupOf, groupOrder } from '../core/checkpoint/grouping';
import type { OverviewMetadataEntry, OverviewModel, OverviewTensor } from '../protocol/messages';

/** Characters of a metadata value shown while its row is collapsed. */
export const PREVIEW_CHARS = 120;
/** Array elements listed in full; a GGUF tokenizer holds 32,000+ strings nobody reads in a table. */
export const ARRAY_ITEMS_SHOWN = 64;
/** Upper bound on the text of one metadata value sent to the webview. */
export const VALUE_TEXT_LIMIT = 8_000;

/** JSON.stringify that survives bigints (GGUF u64 values) and cycles never occur in header data. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
}

/** `[a, b, … N more]`: the first elements of a list of `total`. */
function listText(shown: readonly unknown[], total: number): string {
  const rest = total - shown.length;
  return `[${shown.map((v) => toJson(v)).join(', ')}${rest > 0 ? `${shown.length ? ', ' : ''}… ${rest.toLocaleString('en-US')} more` : ''}]`;
}

/** The `{ arrayOf, length, first }` form readers use for long arrays they did not load whole. */
function isArraySummary(v: unknown): v is { arrayOf: string; length: number; first: unknown[] } {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.arrayOf === 'string' && typeof o.length === 'number' && Array.isArray(o.first);
}

/**
 * Renders one metadata value to display text. Scalars print as themselves, strings unquoted; arrays
 * list at most ARRAY_ITEMS_SHOWN elements and say how many there are; anything longer than
 * PREVIEW_CHARS (or spanning lines) is flagged `long` so the webview starts it collapsed.
 */
export function metadataEntry(key: string, value: unknown): OverviewMetadataEntry {
  let text: string;
  let arrayLength: number | undefined;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else if (value === null || value === undefined) text = String(value);
  else if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    const items = Array.from(value as ArrayLike<unknown>);
    arrayLength = items.length;
    text = listText(items.slice(0, ARRAY_ITEMS_SHOWN), items.length);
  } else if (isArraySummary(value)) {
    // A reader that keeps big arrays out of memory gives {arrayOf, length, first} (GGUF tokenizers).
    arrayLength = value.length;
    text = `${listText(value.first.slice(0, ARRAY_ITEMS_SHOWN), value.length)} (${value.arrayOf})`;
  } else text = toJson(value);
  if (text.length > VALUE_TEXT_LIMIT) text = `${text.slice(0, VALUE_TEXT_LIMIT)} … (${text.length.toLocaleString('en-US')} characters)`;
  const firstLine = text.split('\n', 1)[0];
  const long = text.length > PREVIEW_CHARS || firstLine.length !== text.length;
  const preview = long ? `${firstLine.slice(0, PREVIEW_CHARS)}…` : text;
  return { key, text, preview, long, ...(arrayLength !== undefined ? { arrayLength } : {}) };
}

/** A tensor's data file as shown: relative to the opened file's folder when inside it. */
export function displayFile(file: string, openedPath: string): string {
  const rel = path.relative(path.dirname(openedPath), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

export function buildOverviewModel(s: CheckpointSummary): OverviewModel {
  const tensors: OverviewTensor[] = s.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: t.dtype,
    params: t.params,
    group: t.group,
    // The summary carries only the label; grouping is a pure function of the name, so recompute
    // the order from it (falls back to the label when a reader chose its own grouping).
    groupOrder: orderOfLabel(t.group, t.name),
    byteOffset: t.byteOffset,
    byteLength: t.byteLength,
    file: displayFile(t.file, s.path),
  }));
  const dtypeMix = Object.entries(s.dtypeMix)
    .map(([dtype, params]) => ({ dtype, params }))
    .sort((a, b) => b.params - a.params || a.dtype.localeCompare(b.dtype));
  const metadata = Object.entries(s.metadata ?? {}).map(([k, v]) => metadataEntry(k, v));
  return {
    fileName: path.basename(s.path),
    path: s.path,
    format: s.format,
    formatDetail: s.formatDetail,
    files: s.files,
    sizeOnDisk: s.sizeOnDisk,
    totalParams: s.totalParams,
    dtypeMix,
    metadata,
    tensors,
  };
}

/** Sort key of a group label ("embedding" < "block 0" < … < "head" < "other"). */
export function orderOfLabel(label: string, name: string): number {
  const m = /^block (\d+)$/.exec(label);
  if (m) return Number(m[1]);
  if (label === 'embedding') return -1;
  if (label === 'head') return 1e9;
  if (label === 'other') return 1e9 + 1;
  return groupOrder(groupOf(name));
}
