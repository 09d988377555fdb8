/**
 * The model map's grid: rows are the tensor kinds present (in KIND_ORDER), columns are the block
 * indices present in ascending order, preceded by one column (depth null, shown as "–") for tensors
 * outside the blocks (embeddings, head) when there are any. Two tensors of the same kind and depth
 * (rare: e.g. two "other" matrices) get extra rows "other 2", ... so that no cell hides another.
 */
import type { MapTensorMetrics } from '../../src/protocol/messages';
import { classifyTensor, KIND_ORDER, type TensorKind } from '../shared/classify';
import { metricValue, type MapMetric } from '../shared/metrics';

export interface MapCell {
  name: string;
  kind: TensorKind;
  depth: number | null;
  row: number;
  col: number;
}

export interface MapLayout {
  rows: TensorKind[];
  columns: Array<number | null>;
  cells: MapCell[];
}

export function mapLayout(names: string[]): MapLayout {
  const cls = names.map((n) => ({ name: n, ...classifyTensor(n) }));
  const kinds = KIND_ORDER.filter((k) => cls.some((c) => c.kind === k));
  const depths = [...new Set(cls.map((c) => c.depth).filter((d): d is number => d !== null))].sort((a, b) => a - b);
  const columns: Array<number | null> = cls.some((c) => c.depth === null) ? [null, ...depths] : depths;
  // Rows: one per kind, repeated when a (kind, depth) slot is taken more than once.
  const rows: TensorKind[] = [];
  const rowOf = new Map<string, number>();
  const cells: MapCell[] = [];
  for (const k of kinds) {
    const ofKind = cls.filter((c) => c.kind === k);
    const used = new Map<string, number>();
    let extra = 0;
    const base = rows.length;
    rows.push(k);
    for (const c of ofKind) {
      const key = String(c.depth);
      const n = used.get(key) ?? 0;
      used.set(key, n + 1);
      if (n > extra) { extra = n; rows.push(k); }
      const row = base + n;
      rowOf.set(c.name, row);
      cells.push({ name: c.name, kind: k, depth: c.depth, row, col: columns.indexOf(c.depth) });
    }
  }
  return { rows, columns, cells };
}

export interface MapSort {
  key: 'name' | 'kind' | 'depth' | MapMetric;
  dir: 'asc' | 'desc';
}

/** Table order; null values (undefined metrics) sort last in either direction. */
export function sortMapRows(rows: MapTensorMetrics[], sort: MapSort): MapTensorMetrics[] {
  const val = (t: MapTensorMetrics): string | number | null => {
    if (sort.key === 'name') return t.name;
    const c = classifyTensor(t.name);
    if (sort.key === 'kind') return KIND_ORDER.indexOf(c.kind);
    if (sort.key === 'depth') return c.depth;
    return metricValue(t, sort.key);
  };
  const sign = sort.dir === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const x = val(a), y = val(b);
    if (x === null && y === null) return a.name.localeCompare(b.name);
    if (x === null) return 1;
    if (y === null) return -1;
    const d = typeof x === 'string' ? x.localeCompare(y as string) : (x as number) - (y as number);
    return d !== 0 ? sign * d : a.name.localeCompare(b.name);
  });
}
