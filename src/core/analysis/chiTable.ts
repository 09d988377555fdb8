/**
 * The bond-dimension editor's per-tensor tables, from the exact bond spectra of an MPO (pure core:
 * runs in the worker pool as the 'compress-table' task, in the CLI and in tests). For a uniform
 * maximum chi = 1..max:
 *   chi_k = min(chi, L_k, R_k)                                    (analysis/mpo.ts bondDimensionsForChi)
 *   params(chi) = sum_k chi_{k-1} o_k i_k chi_k                   (mpoParamCount)
 *   error(chi)  = sqrt(sum_k sum_{j >= chi_k} s_{k,j}^2) / ||W||_F  (0-based j)
 * The error is Oseledets' TT-SVD bound (Thm 2.2) from each cut's exact Schmidt values; with 2 sites
 * there is one cut and it is the exact error of the truncated TT-SVD (Eckart-Young on the unfolding).
 */
import { bondDimensionsForChi, mpoParamCount, resolveSitePlan, spectrumEntropies } from './mpo';
import { matrixToSiteTensor, sumSquares } from './mpoTensor';
import { CancelledError } from '../checkpoint/errors';
import type { TensorEntry } from '../checkpoint/types';
import type { LinalgBackend } from '../linalg/types';

export interface ChiTableInput {
  outFactors: number[];
  inFactors: number[];
  /** The exact Schmidt values at every bond cut, descending. */
  bondSpectra: ArrayLike<number>[];
  frobeniusNorm: number;
}

export function chiTable(rep: ChiTableInput): { params: number[]; errors: number[] } {
  const normSq = rep.frobeniusNorm ** 2;
  // tails[b][c] = sum_{j >= c} s_{b,j}^2: the weight bond b discards when it keeps c values.
  const tails = rep.bondSpectra.map((s) => {
    const t = new Float64Array(s.length + 1);
    for (let j = s.length - 1; j >= 0; j--) t[j] = t[j + 1] + s[j] * s[j];
    return t;
  });
  const full = bondDimensionsForChi(rep.outFactors, rep.inFactors, Number.MAX_SAFE_INTEGER);
  const maxChi = Math.max(1, ...full);
  const params: number[] = [], errors: number[] = [];
  for (let chi = 1; chi <= maxChi; chi++) {
    const dims = bondDimensionsForChi(rep.outFactors, rep.inFactors, chi);
    params.push(mpoParamCount(rep.outFactors, rep.inFactors, dims));
    let discarded = 0;
    dims.forEach((d, b) => { discarded += tails[b][Math.min(d, tails[b].length - 1)]; });
    errors.push(normSq > 0 ? Math.sqrt(Math.min(1, discarded / normSq)) : 0);
  }
  return { params, errors };
}

/**
 * The exact Schmidt values at every bond cut of W's MPO form without building the cores: the cut
 * after site k is the unfolding of the site tensor P (analysis/mpoTensor.ts) into L_k = d_1 ... d_k
 * rows and R_k = d_{k+1} ... d_N columns, which in P's row-major layout is a plain reshape. Its
 * singular values are the bond spectrum ('exact' spectra of analysis/mpo.ts), at the cost of one
 * singular-value computation per cut instead of a full TT-SVD with cores.
 */
export async function exactBondSpectra(
  w: Float32Array, rows: number, cols: number, outFactors: number[], inFactors: number[],
  backend: Pick<LinalgBackend, 'singularValues'>, signal?: AbortSignal,
): Promise<ChiTableInput & { bondEntropies: number[]; maxBondEntropies: number[] }> {
  const P = matrixToSiteTensor(w, rows, cols, outFactors, inFactors);
  const d = outFactors.map((o, k) => o * inFactors[k]);
  const total = P.length;
  const bondSpectra: Float64Array[] = [], bondEntropies: number[] = [], maxBondEntropies: number[] = [];
  let L = 1;
  for (let k = 0; k < d.length - 1; k++) {
    if (signal?.aborted) throw new CancelledError();
    L *= d[k];
    const R = total / L;
    const s = await backend.singularValues({ rows: L, cols: R, data: P }, { method: 'auto' });
    bondSpectra.push(s);
    bondEntropies.push(spectrumEntropies(s).entropy);
    maxBondEntropies.push(Math.log(Math.min(L, R)));
  }
  return { outFactors, inFactors, bondSpectra, frobeniusNorm: Math.sqrt(sumSquares(w)), bondEntropies, maxBondEntropies };
}

/** The site factorisation a table is asked for: explicit factors, or the default 2-site plan. */
export interface SiteFactors {
  outFactors: number[];
  inFactors: number[];
}

/**
 * One tensor's row of the bond-dimension editor (JSON-serialisable; the protocol's CompressTensor
 * has exactly this shape).
 */
export interface CompressTableResult {
  name: string;
  shape: [number, number];
  outFactors: number[];
  inFactors: number[];
  /** params[chi - 1] and errors[chi - 1] for chi = 1 .. maxChi. */
  params: number[];
  errors: number[];
  bondEntropies: Array<number | null>;
  maxBondEntropies: number[];
  /** False for embeddings / heads: compressing them costs more quality than the saving is worth. */
  defaultOn: boolean;
}

/** Token / position embeddings and output heads under the naming schemes we read (GPT-2, llama.cpp, HF llama). */
const EMBEDDING_LIKE = /(^|\.)(wte|wpe|token_embd|position_embd|embed_tokens|lm_head|output)(\.weight)?$/;

/**
 * The table of one 2-D tensor: its exact bond spectra (2 sites unless factors are given), then
 * chiTable's params and errors for every uniform chi.
 */
export async function compressTensorTable(
  entry: TensorEntry, backend: Pick<LinalgBackend, 'singularValues'>, factors?: SiteFactors, signal?: AbortSignal,
): Promise<CompressTableResult> {
  if (entry.shape.length !== 2) throw new Error(`${entry.name} is not a 2-D tensor (shape [${entry.shape.join(', ')}])`);
  const [rows, cols] = entry.shape;
  const w = await entry.read({ signal });
  const plan = resolveSitePlan(rows, cols, factors ? { outFactors: factors.outFactors, inFactors: factors.inFactors } : { sites: 2 });
  const rep = await exactBondSpectra(w, rows, cols, plan.outFactors, plan.inFactors, backend, signal);
  const { params, errors } = chiTable(rep);
  return {
    name: entry.name, shape: [rows, cols], outFactors: rep.outFactors, inFactors: rep.inFactors, params, errors,
    bondEntropies: rep.bondEntropies, maxBondEntropies: rep.maxBondEntropies, defaultOn: !EMBEDDING_LIKE.test(entry.name),
  };
}
