/**
 * The shape of the Models tree — model -> group -> tensor — and its name filter, as pure data so the
 * unit tests can run it without VS Code. modelTree.ts turns these nodes into TreeItems.
 */
import type { CheckpointSummary } from '../core/checkpoint/types';
import { orderOfLabel } from './overviewModel';

export type TensorRow = CheckpointSummary['tensors'][number];

export interface GroupView {
  label: string;
  order: number;
  /** Tensors of the group that pass the filter, in file order. */
  tensors: TensorRow[];
  /** Parameters of the shown tensors. */
  params: number;
}

/**
 * Case-insensitive match of a tensor name against the filter. The filter is a plain substring; several
 * words separated by spaces must all occur ("blk.3 attn" matches blk.3.attn_q.weight). An empty filter
 * matches everything.
 */
export function matchesFilter(name: string, filter: string): boolean {
  const words = filter.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const n = name.toLowerCase();
  return words.every((w) => n.includes(w));
}

/** Groups the tensors that pass `filter`, ordered embedding, block 0..N, head, other; empty groups dropped. */
export function groupTensors(tensors: readonly TensorRow[], filter: string): GroupView[] {
  const byLabel = new Map<string, GroupView>();
  for (const t of tensors) {
    if (!matchesFilter(t.name, filter)) continue;
    let g = byLabel.get(t.group);
    if (!g) {
      g = { label: t.group, order: orderOfLabel(t.group, t.name), tensors: [], params: 0 };
      byLabel.set(t.group, g);
    }
    g.tensors.push(t);
    g.params += t.params;
  }
  return [...byLabel.values()].sort((a, b) => a.order - b.order || a.label.localeCompare(b.label));
}

/** How many tensors of all models pass the filter, out of how many. */
export function countMatches(models: readonly { tensors: readonly TensorRow[] }[], filter: string): { shown: number; total: number } {
  let shown = 0;
  let total = 0;
  for (const m of models) {
    for (const t of m.tensors) {
      total++;
      if (matchesFilter(t.name, filter)) shown++;
    }
  }
  return { shown, total };
}

/** "1,234,567" — parameter counts and byte offsets read better grouped. */
export function grouped(n: number): string {
  return n.toLocaleString('en-US');
}

/** Compact parameter count: 260,000 -> "260K", 6,738,415,616 -> "6.74B". */
export function compactCount(n: number): string {
  const units: Array<[number, string]> = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [scale, suffix] of units) {
    if (n >= scale) {
      const v = n / scale;
      // Three significant digits, trailing zeros dropped (Number("2.60") prints "2.6").
      return `${Number(v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2))}${suffix}`;
    }
  }
  return String(n);
}

/** Tree description of a tensor: "[64, 512] F32 · 32,768". */
export function tensorDescription(t: Pick<TensorRow, 'shape' | 'dtype' | 'params'>): string {
  return `[${t.shape.join(', ')}] ${t.dtype} · ${grouped(t.params)}`;
}

/** Byte range as shown in tooltips: "bytes 1,024 – 2,047 (1,024 bytes)" (inclusive end). */
export function byteRange(offset: number, length: number): string {
  return length > 0
    ? `bytes ${grouped(offset)} – ${grouped(offset + length - 1)} (${grouped(length)} bytes)`
    : `byte ${grouped(offset)} (empty)`;
}
