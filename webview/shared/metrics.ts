/**
 * The metrics the model map can colour by, as pure accessors over the host's MapTensorMetrics, and the
 * colour domain of a set of values.
 */
import type { MapTensorMetrics } from '../../src/protocol/messages';

export type MapMetric = 'normalizedEntropy' | 'effRankRatio' | 'stableRank' | 'alpha' | 'outliers';

export const METRICS: Array<{ id: MapMetric; label: string; help: string }> = [
  { id: 'normalizedEntropy', label: 'Normalised entropy', help: 'S / ln r: 1 = all directions equally weighted' },
  { id: 'effRankRatio', label: 'Effective rank / full rank', help: 'exp(S) / min(m, n)' },
  { id: 'stableRank', label: 'Stable rank', help: '||W||_F^2 / ||W||_2^2' },
  { id: 'alpha', label: 'Power-law alpha', help: 'tail exponent of the eigenvalue density (weightwatcher)' },
  { id: 'outliers', label: 'Outliers', help: 'singular values above the Marchenko-Pastur bulk edge' },
];

/** The metric's value for one tensor, or null when it is undefined there (alpha of a short spectrum). */
export function metricValue(t: MapTensorMetrics, m: MapMetric): number | null {
  switch (m) {
    case 'normalizedEntropy': return t.normalizedEntropy;
    case 'effRankRatio': return t.rank > 0 ? t.effectiveRank / t.rank : null;
    case 'stableRank': return t.stableRank;
    case 'alpha': return t.alpha;
    case 'outliers': return t.outliers;
  }
}

/** [min, max] of the finite values; a degenerate range is widened so a colour scale stays defined. */
export function metricDomain(values: Array<number | null>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (v !== null && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) return [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

/** Significant-digit formatting for readouts (null -> an en dash). */
export function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-4)) return v.toExponential(digits - 1);
  return Number(v.toPrecision(digits)).toString();
}
