/**
 * Difference-in-means directions in the residual stream (Arditi et al., "Refusal in Language Models
 * Is Mediated by a Single Direction", arXiv 2406.11717, section 2.3): for two prompt sets A and B and
 * a capture point l (activations.ts),
 *   r_l = mean_{x in A} x_l - mean_{x in B} x_l.
 *
 * Separation score of a point (how cleanly the unit direction r^_l = r_l / ||r_l|| splits the sets):
 * project every activation, p = x_l . r^_l; then
 *   separation_l = (mean_A p - mean_B p) / s_pooled,
 *   s_pooled^2 = ((n_A - 1) var_A(p) + (n_B - 1) var_B(p)) / (n_A + n_B - 2)     (sample variances)
 * i.e. Cohen's d of the projections. Since mean_A p - mean_B p = r^ . r = ||r||, this is ||r|| over the
 * within-set spread along r: large when the sets differ along r by much more than they vary along it.
 * The norm alone grows with depth (the residual stream's scale grows), so the default layer is the
 * one with the largest separation, not the largest norm.
 *
 * The saved direction (.npy, float32 [d]) is the UNIT vector r^ of the chosen point by default
 * (`raw` saves r itself); surgery's loadDirection normalises either way, and the report gives ||r||.
 */
import { writeNpy } from '../checkpoint/npy';
import type { ResidualCapture } from './activations';

export interface LayerDirection {
  /** Capture point: l < L is block l's input, l = L the final norm input. */
  layer: number;
  label: string;
  /** ||r_l||. */
  norm: number;
  separation: number;
  /** mean_A p and mean_B p of the projections on r^_l, and their pooled std. */
  meanProjectionA: number;
  meanProjectionB: number;
  pooledStd: number;
}

export interface DirectionSet {
  layers: LayerDirection[];
  /** r_l per capture point (float64, length d). */
  directions: Float64Array[];
  /** mean_A x_l and mean_B x_l (float64). */
  meansA: Float64Array[];
  meansB: Float64Array[];
  dModel: number;
  /** The point with the largest separation. */
  bestLayer: number;
}

/** Column means of a [n, d] row-major block, float64. */
export function rowMean(x: Float32Array, n: number, d: number): Float64Array {
  const m = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) m[j] += x[i * d + j];
  for (let j = 0; j < d; j++) m[j] /= n;
  return m;
}

/** p_i = x_i . u for every row of x [n, d]. */
export function projections(x: Float32Array, n: number, d: number, u: ArrayLike<number>): Float64Array {
  const p = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[i * d + j] * u[j];
    p[i] = s;
  }
  return p;
}

function meanVar(p: Float64Array): { mean: number; ss: number } {
  let m = 0;
  for (const v of p) m += v;
  m /= p.length;
  let ss = 0;
  for (const v of p) ss += (v - m) ** 2;
  return { mean: m, ss };
}

/** Difference-in-means direction and separation of one capture point (file comment). */
export function differenceInMeans(a: Float32Array, nA: number, b: Float32Array, nB: number, d: number): { r: Float64Array; meanA: Float64Array; meanB: Float64Array; norm: number; separation: number; meanProjectionA: number; meanProjectionB: number; pooledStd: number } {
  if (nA < 1 || nB < 1) throw new RangeError('difference in means needs at least one activation in each set');
  const meanA = rowMean(a, nA, d), meanB = rowMean(b, nB, d);
  const r = new Float64Array(d);
  let sq = 0;
  for (let j = 0; j < d; j++) { r[j] = meanA[j] - meanB[j]; sq += r[j] * r[j]; }
  const norm = Math.sqrt(sq);
  const u = r.map((v) => (norm > 0 ? v / norm : 0));
  const pa = meanVar(projections(a, nA, d, u)), pb = meanVar(projections(b, nB, d, u));
  const dof = nA + nB - 2;
  const pooledStd = dof > 0 ? Math.sqrt((pa.ss + pb.ss) / dof) : NaN;
  const separation = pooledStd > 0 ? (pa.mean - pb.mean) / pooledStd : norm > 0 ? Infinity : 0;
  return { r, meanA, meanB, norm, separation, meanProjectionA: pa.mean, meanProjectionB: pb.mean, pooledStd };
}

/** r_l and the separation at every capture point of two captures of the same model. */
export function directionsBetween(a: ResidualCapture, b: ResidualCapture): DirectionSet {
  if (a.points !== b.points || a.dModel !== b.dModel) throw new RangeError('the two captures come from different models');
  const d = a.dModel;
  const layers: LayerDirection[] = [];
  const directions: Float64Array[] = [], meansA: Float64Array[] = [], meansB: Float64Array[] = [];
  for (let l = 0; l < a.points; l++) {
    const r = differenceInMeans(a.activations[l], a.prompts, b.activations[l], b.prompts, d);
    layers.push({ layer: l, label: a.labels[l], norm: r.norm, separation: r.separation, meanProjectionA: r.meanProjectionA, meanProjectionB: r.meanProjectionB, pooledStd: r.pooledStd });
    directions.push(r.r); meansA.push(r.meanA); meansB.push(r.meanB);
  }
  let best = 0;
  for (let l = 1; l < layers.length; l++) if (layers[l].separation > layers[best].separation) best = l;
  return { layers, directions, meansA, meansB, dModel: d, bestLayer: best };
}

/** Writes r (raw) or r / ||r|| (unit, the default) as a float32 [d] .npy, atomically. */
export async function writeDirection(file: string, r: ArrayLike<number>, mode: 'unit' | 'raw' = 'unit'): Promise<void> {
  let n = 0;
  for (let j = 0; j < r.length; j++) n += r[j] * r[j];
  n = Math.sqrt(n);
  if (mode === 'unit' && !(n > 0)) throw new RangeError('the direction is zero: the two prompt sets have the same mean activation at this layer');
  const out = new Float32Array(r.length);
  for (let j = 0; j < r.length; j++) out[j] = mode === 'unit' ? r[j] / n : r[j];
  await writeNpy(file, out, [r.length]);
}
