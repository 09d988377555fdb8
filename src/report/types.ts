/**
 * The numbers of a headless tour (`tensor-scalpel tour`): what `--json` prints and what the HTML
 * report draws. JSON-serialisable; built by src/cli/commands/tour.ts, rendered by src/report/html.ts.
 */
import type { EvaluationReport } from '../core/evaluate/evaluate';
import type { ScalpelDemoReport } from '../core/evaluate/scalpelDemo';
import type { CompressionRow } from '../core/evaluate/compressionTable';

export interface TourModel {
  path: string;
  format: string;
  formatDetail: string;
  sizeOnDisk: number;
  tensors: number;
  /** Tensors with a matrix shape (what the spectra scan covers). */
  matrices: number;
  /** summarize(ckpt).totalParams (tied storage counted once). */
  totalParams: number;
  dtypeMix: Record<string, number>;
  /** A few architecture facts from the metadata (GGUF keys such as llama.embedding_length), when present. */
  facts: Array<{ key: string; value: string }>;
}

export interface TourTensorSpectrum {
  name: string;
  /** The tensor kind: the name without its block prefix and `.weight` (attn_q, ffn_down, token_embd...). */
  kind: string;
  /** Block index, or null outside the blocks. */
  depth: number | null;
  shape: [number, number];
  normalizedEntropy: number | null;
  vonNeumannEntropy: number;
  effectiveRank: number;
  stableRank: number;
  spectralNorm: number;
  mpEdge: number;
  outliers: number;
  alpha: number | null;
}

export interface TourKindSummary {
  kind: string;
  count: number;
  meanNormalizedEntropy: number | null;
  meanEffectiveRank: number;
  /** Sum of MP outliers over the kind's tensors. */
  outliers: number;
}

export interface TourRepresentative {
  name: string;
  why: string;
  shape: [number, number];
  singularValues: number[];
  mpEdge: number;
  outliers: number;
  /** truncation.errors[k] = ||W - W_k||_F / ||W||_F for k = 0..r. */
  truncationErrors: number[];
}

export interface TourSpectra {
  backend: string;
  seconds: number;
  tensors: TourTensorSpectrum[];
  byKind: TourKindSummary[];
  /** The 5 tensors with most outliers above the Marchenko-Pastur edge. */
  topOutliers: Array<{ name: string; outliers: number; spectralNorm: number; mpEdge: number }>;
  representatives: TourRepresentative[];
  failures: Array<{ name: string; message: string }>;
}

export interface TourBondProfile {
  tensor: string;
  shape: [number, number];
  outFactors: number[];
  inFactors: number[];
  bonds: Array<{ index: number; leftDim: number; rightDim: number; entropy: number | null; renyi2: number | null; maxEntropy: number }>;
}

export interface TourCompression {
  method: 'mpo';
  chi: number;
  /** The compressed checkpoint written into the output folder. */
  out: string;
  format: string;
  tensors: Array<{ name: string; params: number; denseParams: number; relativeError: number; bondDimensions: number[] }>;
  /** The compressed tensors only: their dense parameters and their MPO parameters. */
  compressedDenseParams: number;
  compressedParams: number;
  /** The whole model (every stored tensor): before and after, ratio = after / before. */
  originalParams: number;
  totalParams: number;
  ratio: number;
  /** Mean of the per-tensor relative Frobenius errors ||W - W_mpo||_F / ||W||_F. */
  meanRelativeError: number;
  maxRelativeError: number;
  seconds: number;
  /** The written file reopened with open(): tensor count and summarize().totalParams. */
  reopened: { tensors: number; totalParams: number; format: string };
}

/** compressionTable() over a few chi (in memory): how chi trades parameters for quality. */
export interface TourChiSweep {
  sites: number;
  dense: { perplexity: number; accuracy: number };
  rows: CompressionRow[];
  seconds: number;
}

export interface TourEvaluation extends Pick<EvaluationReport, 'text' | 'tokens' | 'perplexity' | 'accuracy' | 'klDivergence' | 'top1Agreement' | 'samples'> {
  originalPerplexity: number;
  originalAccuracy: number;
  seconds: number;
}

export interface TourScalpel extends ScalpelDemoReport {
  seconds: number;
}

export interface TourResult {
  tool: string;
  createdAt: string;
  outDir: string;
  reportPath: string;
  model: TourModel;
  spectra: TourSpectra;
  bondProfile: TourBondProfile;
  compression: TourCompression;
  chiSweep: TourChiSweep;
  evaluation: TourEvaluation;
  scalpel: TourScalpel;
  seconds: number;
}
