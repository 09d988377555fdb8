/**
 * Sorting, filtering and grouping of the overview's tensor table. Pure (no DOM), unit-tested under Node.
 */
import type { OverviewTensor } from '../../src/protocol/messages';

export type SortKey = 'group' | 'name' | 'shape' | 'dtype' | 'params' | 'bytes' | 'file' | 'offset';
export type SortDir = 'asc' | 'desc';
export interface SortSpec { key: SortKey; dir: SortDir }

export const DEFAULT_SORT: SortSpec = { key: 'group', dir: 'asc' };

/** Clicking a column header: the same column flips direction; a new column starts ascending (numbers descending). */
export function nextSort(current: SortSpec, key: SortKey): SortSpec {
  if (current.key === key) return { key, dir: current.dir === 'asc' ? 'desc' : 'asc' };
  return { key, dir: key === 'params' || key === 'bytes' ? 'desc' : 'asc' };
}

/** Compares names with embedded numbers by value: blk.2 < blk.10. */
const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

function compareShape(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/**
 * Sorts a copy of `rows`. Ties keep file order (byte offset, then the original position), so sorting
 * by group lists each group's tensors as they are stored.
 */
export function sortTensors(rows: readonly OverviewTensor[], spec: SortSpec): OverviewTensor[] {
  const indexed = rows.map((row, i) => ({ row, i }));
  const sign = spec.dir === 'asc' ? 1 : -1;
  const primary = (a: OverviewTensor, b: OverviewTensor): number => {
    switch (spec.key) {
      case 'group': return a.groupOrder - b.groupOrder || collator.compare(a.group, b.group);
      case 'name': return collator.compare(a.name, b.name);
      case 'shape': return compareShape(a.shape, b.shape);
      case 'dtype': return collator.compare(a.dtype, b.dtype);
      case 'params': return a.params - b.params;
      case 'bytes': return a.byteLength - b.byteLength;
      case 'file':
      case 'offset': return collator.compare(a.file, b.file) || a.byteOffset - b.byteOffset;
    }
  };
  indexed.sort((x, y) => sign * primary(x.row, y.row) || x.i - y.i);
  return indexed.map((x) => x.row);
}

/**
 * Keeps the rows whose name contains every word of `text` (case-insensitive) and, when `group` is set,
 * that belong to that group.
 */
export function filterTensors(rows: readonly OverviewTensor[], text: string, group = ''): OverviewTensor[] {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  return rows.filter((r) => (!group || r.group === group) && words.every((w) => r.name.toLowerCase().includes(w)));
}

export interface GroupRow {
  label: string;
  order: number;
  tensors: number;
  params: number;
  bytes: number;
}

/** One row per group, in model order (embedding, block 0..N, head, other). */
export function summarizeGroups(rows: readonly OverviewTensor[]): GroupRow[] {
  const map = new Map<string, GroupRow>();
  for (const r of rows) {
    let g = map.get(r.group);
    if (!g) map.set(r.group, (g = { label: r.group, order: r.groupOrder, tensors: 0, params: 0, bytes: 0 }));
    g.tensors++;
    g.params += r.params;
    g.bytes += r.byteLength;
  }
  return [...map.values()].sort((a, b) => a.order - b.order || collator.compare(a.label, b.label));
}
