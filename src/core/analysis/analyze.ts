/**
 * The spectrum analysis of one tensor: choose exact or estimate mode, run it on a backend, and return
 * a JSON-serialisable `TensorSpectrum`. This is what a worker runs per tensor.
 */
import type { LinalgBackend } from '../linalg/types';
import { throwIfAborted } from '../checkpoint/errors';
import {
  type MatrixShape, type SpectralDensity, type SpectrumMetrics, type TruncationCurve,
  matrixShape, spectrumMetrics, truncationCurve, singularValueHistogram,
} from './spectrum';
import { type EstimateOptions, type EstimatedMetrics, estimateSpectrum, estimatedMetrics } from './estimate';

/** Bump when any metric's definition or output changes: it is part of every cache key. */
export const SPECTRUM_ANALYSIS_VERSION = 1;

export type SpectrumMode = 'exact' | 'estimate' | 'auto';

export interface SpectrumOptions {
  /** 'auto' (default): exact up to the threshold below, estimate above. */
  mode?: SpectrumMode;
  /** Estimate-mode parameters (probes, Lanczos steps, top-k, seed). */
  estimate?: Omit<EstimateOptions, 'signal'>;
  /** Bins of the density histogram (default 64). */
  bins?: number;
  /**
   * 'auto' uses exact mode while min(m, n) <= this (default: 2048 on the native backend, where a
   * 2048 x 2048 symmetric eigenproblem takes about a second, 1024 on the portable one, about 8x slower).
   */
  exactMaxRank?: number;
}

export interface TensorSpectrum extends SpectrumMetrics {
  name: string;
  /** The stored shape. */
  shape: number[];
  dtype: string;
  /** The matrix it was read as: [rows, cols] (see matrixShape for the rule). */
  matrix: [number, number];
  mode: 'exact' | 'estimate';
  backend: string;
  /** Exact mode: all min(m, n) singular values, descending. */
  singularValues?: number[];
  /** Estimate mode: the top-k singular values, descending. */
  topSingularValues?: number[];
  /** Relative Frobenius error and parameters at every rank k (estimate mode: k <= top-k). */
  truncation: TruncationCurve;
  density: SpectralDensity;
  /** Estimate mode: 95% intervals of the estimated metrics. */
  confidence?: EstimatedMetrics['confidence'];
  /** Estimate mode: probes, Lanczos steps and the trace self-check. */
  estimateDetails?: {
    probes: number; lanczosSteps: number; traceCheck: number;
    /** Each reported top singular value has a true one within topKResidual * s_1 (a rigorous bound). */
    topKResidual: number;
    /** Block Lanczos's own estimate of the top values' remaining error, relative to s_1. */
    topKErrorEstimate: number | null;
    /** Whether the top values reached the requested tolerance within the iteration cap. */
    topKConverged: boolean | null;
  };
  /** Seconds spent computing (read excluded). */
  seconds: number;
}

export function exactMaxRankFor(backend: Pick<LinalgBackend, 'name'>, override?: number): number {
  return override ?? (backend.name === 'native' ? 2048 : 1024);
}

export function chooseMode(mode: SpectrumMode, shape: MatrixShape, backend: Pick<LinalgBackend, 'name'>, exactMaxRank?: number): 'exact' | 'estimate' {
  if (mode !== 'auto') return mode;
  return Math.min(shape.rows, shape.cols) <= exactMaxRankFor(backend, exactMaxRank) ? 'exact' : 'estimate';
}

/** Analyses one decoded tensor (row-major float32). Throws a RangeError for tensors that are not matrices. */
export async function analyzeTensor(
  backend: LinalgBackend,
  tensor: { name: string; shape: number[]; dtype: string },
  data: Float32Array,
  options: SpectrumOptions = {},
  signal?: AbortSignal,
): Promise<TensorSpectrum> {
  const shape = matrixShape(tensor.shape);
  if (!shape) throw new RangeError(`tensor ${tensor.name} has shape [${tensor.shape.join(', ')}]: not a matrix`);
  if (data.length !== shape.rows * shape.cols) throw new RangeError(`tensor ${tensor.name}: ${data.length} values for shape [${tensor.shape.join(', ')}]`);
  // NaN/Inf make every metric meaningless (and LAPACK may loop or fail): report them instead.
  let bad = 0, firstBad = -1;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) { bad++; if (firstBad < 0) firstBad = i; }
  if (bad > 0) throw new RangeError(`tensor ${tensor.name}: ${bad} non-finite value(s) (NaN or Inf), the first at element ${firstBad} (row ${Math.floor(firstBad / shape.cols)}, column ${firstBad % shape.cols}); its spectrum is undefined`);
  throwIfAborted(signal);
  const started = performance.now();
  const mode = chooseMode(options.mode ?? 'auto', shape, backend, options.exactMaxRank);
  const base = { name: tensor.name, shape: tensor.shape, dtype: tensor.dtype, matrix: [shape.rows, shape.cols] as [number, number], backend: backend.name };
  const W = { rows: shape.rows, cols: shape.cols, data };
  if (mode === 'exact') {
    const s = Array.from(await backend.singularValues(W, { signal }));
    return {
      ...base,
      mode,
      ...spectrumMetrics(s, shape),
      singularValues: s,
      truncation: truncationCurve(s, shape),
      density: singularValueHistogram(s, options.bins ?? 64),
      seconds: (performance.now() - started) / 1000,
    };
  }
  const e = await estimateSpectrum(backend, W, { ...options.estimate, bins: options.bins ?? options.estimate?.bins, signal });
  const { confidence, ...metrics } = estimatedMetrics(e, shape);
  return {
    ...base,
    mode,
    ...metrics,
    topSingularValues: e.topSingularValues,
    truncation: truncationCurve(e.topSingularValues, shape, e.frobeniusSquared),
    density: e.density,
    confidence,
    estimateDetails: { probes: e.probes, lanczosSteps: e.lanczosSteps, traceCheck: e.traceCheck, topKResidual: e.topKResidual, topKErrorEstimate: e.topKErrorEstimate, topKConverged: e.topKConverged },
    seconds: (performance.now() - started) / 1000,
  };
}
