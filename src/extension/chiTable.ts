/**
 * The bond-dimension editor's per-tensor tables, from the exact bond spectra of an MPO (pure: no
 * vscode, so unit tests run it). For a uniform maximum chi = 1..max:
 *   chi_k = min(chi, L_k, R_k)                                    (analysis/mpo.ts bondDimensionsForChi)
 *   params(chi) = sum_k chi_{k-1} o_k i_k chi_k                   (mpoParamCount)
 *   error(chi)  = sqrt(sum_k sum_{j >= chi_k} s_{k,j}^2) / ||W||_F  (0-based j)
 * The error is Oseledets' TT-SVD bound (Thm 2.2) from each cut's exact Schmidt values; with 2 sites
 * there is one cut and it is the exact error of the truncated TT-SVD (Eckart-Young on the unfolding).
 */
import { bondDimensionsForChi, mpoParamCount } from '../core/analysis/mpo';

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
