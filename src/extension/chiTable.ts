/**
 * The bond-dimension editor's per-tensor tables, from the exact bond spectra of an MPO (pure: no
 * vscode, so unit tests run it). For a uniform maximum chi = 1..max:
 *   chi_k = min(chi, L_k, R_k)                                    (analysis/mpo.ts bondDimensionsForChi)
 *   params(chi) = sum_k chi_{k-1} o_k i_k chi_k                   (mpoParamCount)
 *   error(chi)  = sqrt(sum_k sum_{j >= chi_k} s_{k,j}^2) / ||W||_F  (0-based j)
 * The error is Oseledets' TT-SVD bound (Thm 2.2) from each cut's exact Schmidt values; with 2 sites
 * there is one cut and it is the exact error of the truncated TT-SVD (Eckart-Young on the unfolding).
 */
import { bondDimensionsForChi, mpoParamCount, spectrumEntropies } from '../core/analysis/mpo';
import { matrixToSiteTensor, sumSquares } from '../core/analysis/mpoTensor';
import { CancelledError } from '../core/checkpoint/errors';
import type { LinalgBackend } from '../core/linalg/types';

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
