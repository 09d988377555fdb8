/** Pure logic of the Evaluate panel (no DOM): divergence of two generations, number formats, the directions table. */
import type { DirectionLayerRow } from '../../src/protocol/evaluate';

/**
 * Index of the first position where two token sequences differ: the first i with a[i] !== b[i]; when
 * one is a proper prefix of the other, the shorter one's length (one stopped, the other went on);
 * -1 when they are identical.
 */
export function firstDivergence(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

const dash = '–';
const finite = (v: number | null | undefined): v is number => v !== null && v !== undefined && Number.isFinite(v);

/** Perplexity exp(mean NLL): four significant digits ("3.284", "12.07", "1523"). */
export function formatPerplexity(v: number | null | undefined): string {
  if (!finite(v)) return dash;
  return v >= 1e4 ? v.toExponential(3) : v.toPrecision(4);
}

/** A fraction in [0, 1] as a percentage with `digits` decimals ("99.22 %"); exactly 1 prints "100 %". */
export function formatFraction(v: number | null | undefined, digits = 2): string {
  if (!finite(v)) return dash;
  if (v === 1) return '100 %';
  if (v === 0) return '0 %';
  return `${(v * 100).toFixed(digits)} %`;
}

/**
 * KL divergence in nats: exactly 0 prints "0"; small values in exponent form with three significant
 * digits ("3.52e-4"), larger ones with four ("0.1234").
 */
export function formatKl(v: number | null | undefined): string {
  if (!finite(v)) return dash;
  if (v === 0) return '0';
  if (Math.abs(v) < 1e-2) {
    const [m, e] = v.toExponential(2).split('e');
    return `${m}e${Number(e)}`;
  }
  return v.toPrecision(4);
}

/** Throughput in tokens per second, grouped thousands without decimals above 100 ("21,628"). */
export function formatRate(v: number | null | undefined): string {
  if (!finite(v)) return dash;
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toPrecision(3);
}

/** Latency in milliseconds with three significant digits ("0.641", "12.3", "153"). */
export function formatMs(v: number | null | undefined): string {
  if (!finite(v)) return dash;
  return v >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toPrecision(3);
}

/** Shows a token's text visibly: newlines as ⏎ (plus a real break), an empty piece as ∅. */
export function visiblePiece(piece: string): string {
  if (piece === '') return '∅';
  return piece.replace(/\n/g, '⏎\n');
}

export interface DirectionRowView {
  layer: number;
  label: string;
  norm: string;
  separation: string;
  /** Bar lengths in [0, 1]: the value over the column's largest magnitude. */
  normBar: number;
  separationBar: number;
  best: boolean;
  chosen: boolean;
}

/**
 * The per-layer table of difference-in-means directions: formatted ||r|| and separation, bar lengths
 * relative to each column's largest magnitude, the best (largest separation) and chosen rows.
 */
export function directionRows(layers: readonly DirectionLayerRow[], bestLayer: number, chosenLayer: number | undefined): DirectionRowView[] {
  let maxNorm = 0, maxSep = 0;
  for (const l of layers) {
    if (Number.isFinite(l.norm)) maxNorm = Math.max(maxNorm, Math.abs(l.norm));
    if (Number.isFinite(l.separation)) maxSep = Math.max(maxSep, Math.abs(l.separation));
  }
  const chosen = chosenLayer !== undefined && layers.some((l) => l.layer === chosenLayer) ? chosenLayer : bestLayer;
  const bar = (v: number, max: number) => (max > 0 && Number.isFinite(v) ? Math.abs(v) / max : 0);
  return layers.map((l) => ({
    layer: l.layer, label: l.label,
    norm: finite(l.norm) ? l.norm.toPrecision(4) : dash,
    separation: Number.isFinite(l.separation) ? l.separation.toFixed(3) : l.separation === Infinity ? '∞' : dash,
    normBar: bar(l.norm, maxNorm), separationBar: bar(l.separation, maxSep),
    best: l.layer === bestLayer, chosen: l.layer === chosen,
  }));
}
