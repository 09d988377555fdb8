/**
 * Global parameter budgets: given each tensor's spectrum, choose per-tensor ranks (SVD) or bond
 * dimensions (MPO) so the total parameter count meets a target while the total discarded weight is
 * least — the layer-sensitivity profiling of CompactifAI (arXiv 2401.14109), done from spectra alone.
 *
 * Error measure. For tensor t at level k (rank or chi) the cost is its relative discarded weight
 *   e_t(k) = (sum of discarded s^2) / ||W_t||_F^2,
 * and the allocation minimises sum_t e_t(k_t) subject to sum_t params_t(k_t) <= target. Normalising
 * per tensor by ||W_t||_F^2 makes the cost the squared relative error of each layer's output map,
 * so a layer with a large norm (an embedding, a wide MLP) does not swallow the whole budget just
 * because its absolute numbers are bigger; every layer's relative error counts the same.
 *   SVD (Eckart-Young): params = k (m + n), discarded = sum_{i>k} s_i^2 (exact).
 *   MPO with a uniform chi: bond dimensions chi_j = min(chi, L_j, R_j) (analysis/mpo.ts), params =
 *   sum_j chi_{j-1} o_j i_j chi_j, discarded = sum_j sum_{i>chi_j} s_{j,i}^2 over the exact bond
 *   spectra — exact for 2 sites, Oseledets' TT-SVD upper bound (Thm 2.2) for more.
 * A tensor may also stay dense (params m n, error 0); factorizations with k (m + n) >= m n are never
 * chosen, since they save nothing.
 *
 * Algorithm: greedy marginal gain on the lower convex hull. Each tensor's states, ordered by
 * parameters, are reduced to the lower convex hull of (params, error); walking down the hull the
 * cost of a step, (error added) / (params saved), only grows. All hull steps of all tensors are
 * taken cheapest first — equivalent to a priority queue holding each tensor's next step, since each
 * tensor's steps come in increasing cost — until the total fits the target. The last step usually
 * overshoots; it is then refined to the largest state of that tensor between the two hull points
 * that still fits (largest params = least error, as error falls with rank). This is the classical
 * greedy for a separable convex resource allocation (exact for the convexified problem), monotone
 * in the budget: a smaller target takes a superset of the steps.
 *
 * Floor: every tensor keeps at least ceil(floor * full) of its rank (SVD: full = min(m, n)) or of
 * its largest bond dimension (MPO: full = max_j min(L_j, R_j)).
 */
import { bondDimensionsForChi, mpoParamCount, tailWeight } from '../analysis/mpo';

export interface SvdBudgetInput {
  name: string;
  method: 'svd';
  rows: number;
  cols: number;
  /** All min(rows, cols) singular values, descending. */
  singularValues: ArrayLike<number>;
}

export interface MpoBudgetInput {
  name: string;
  method: 'mpo';
  rows: number;
  cols: number;
  outFactors: number[];
  inFactors: number[];
  /** The exact Schmidt values at every bond cut (N - 1 spectra), descending. */
  bondSpectra: ArrayLike<number>[];
  /** ||W||_F^2 (equal to the sum of squares of any bond spectrum). */
  normSquared?: number;
}

export type BudgetInput = SvdBudgetInput | MpoBudgetInput;

/** One way of storing a tensor. `level` is the rank / chi; undefined = dense. */
export interface BudgetState {
  level: number | undefined;
  params: number;
  /** Relative discarded weight sum(discarded s^2) / ||W||_F^2 (the squared relative error for SVD and 2-site MPO). */
  error: number;
  /** MPO: the bond dimensions at this chi. */
  bondDims?: number[];
}

export interface BudgetChoice {
  name: string;
  method: 'svd' | 'mpo';
  /** False: the tensor stays dense (no factorization saves enough). */
  compressed: boolean;
  /** Rank (svd) or chi (mpo) when compressed. */
  rank?: number;
  chi?: number;
  bondDims?: number[];
  params: number;
  denseParams: number;
  /** The relative discarded weight (squared relative error estimate). */
  discardedWeight: number;
  /** sqrt(discardedWeight): the relative Frobenius error (exact for svd and 2-site mpo, a bound otherwise). */
  relativeError: number;
}

export interface BudgetAllocation {
  choices: BudgetChoice[];
  target: number;
  totalParams: number;
  denseParams: number;
  /** sum over tensors of the relative discarded weight. */
  totalError: number;
}

export class BudgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BudgetError';
  }
}

function sumSq(s: ArrayLike<number>): number {
  let t = 0;
  for (let i = 0; i < s.length; i++) t += s[i] * s[i];
  return t;
}

/**
 * Every storage state of one tensor, ordered by params descending: dense first, then each level
 * from the largest useful one down to the floor (states with equal params collapse to one).
 */
export function budgetStates(t: BudgetInput, floor = 0): BudgetState[] {
  const dense = t.rows * t.cols;
  const states: BudgetState[] = [{ level: undefined, params: dense, error: 0 }];
  if (t.method === 'svd') {
    const full = Math.min(t.rows, t.cols);
    const total = sumSq(t.singularValues);
    const min = Math.max(1, Math.ceil(floor * full));
    for (let k = full; k >= min; k--) {
      const params = k * (t.rows + t.cols);
      if (params >= dense) continue;
      states.push({ level: k, params, error: total > 0 ? tailWeight(t.singularValues, k) / total : 0 });
    }
  } else {
    const n = t.outFactors.length;
    if (t.bondSpectra.length !== n - 1) throw new BudgetError(`${t.name}: ${t.bondSpectra.length} bond spectra for ${n} sites (expected ${n - 1})`);
    const full = Math.max(1, ...t.bondSpectra.map((s) => s.length));
    const total = t.normSquared ?? (n > 1 ? sumSq(t.bondSpectra[0]) : 0);
    const min = Math.max(1, Math.ceil(floor * full));
    let lastParams = -1;
    for (let chi = full; chi >= min; chi--) {
      const dims = bondDimensionsForChi(t.outFactors, t.inFactors, chi);
      const params = mpoParamCount(t.outFactors, t.inFactors, dims);
      if (params >= dense || params === lastParams) continue;
      lastParams = params;
      let discarded = 0;
      dims.forEach((d, j) => { discarded += tailWeight(t.bondSpectra[j], d); });
      states.push({ level: chi, params, error: total > 0 ? discarded / total : 0, bondDims: dims });
    }
  }
  return states;
}

/**
 * Indices of the lower convex hull of the states (params descending, error ascending), from the
 * dense end: the points a rational allocator would ever stop at when costs are linearised.
 */
export function lowerHull(states: BudgetState[]): number[] {
  // Monotone chain over points sorted by params ascending (states are descending: walk backwards).
  const hull: number[] = [];
  const cross = (o: BudgetState, a: BudgetState, b: BudgetState) =>
    (a.params - o.params) * (b.error - o.error) - (a.error - o.error) * (b.params - o.params);
  for (let i = states.length - 1; i >= 0; i--) {
    while (hull.length >= 2 && cross(states[hull[hull.length - 2]], states[hull[hull.length - 1]], states[i]) <= 0) hull.pop();
    hull.push(i);
  }
  return hull.reverse(); // from the dense state (index 0) downwards
}

interface Step { tensor: number; from: number; to: number; cost: number; order: number }

/**
 * Chooses per-tensor levels meeting `target` total params (over these tensors) with the least total
 * relative discarded weight; see the file comment. Throws BudgetError when even the floor does not fit.
 */
export function allocateBudget(inputs: BudgetInput[], target: number, opts: { floor?: number } = {}): BudgetAllocation {
  const floor = opts.floor ?? 0;
  const all = inputs.map((t) => budgetStates(t, floor));
  const current = all.map(() => 0);
  const denseParams = all.reduce((a, s) => a + s[0].params, 0);
  let total = denseParams;

  const steps: Step[] = [];
  all.forEach((states, t) => {
    const hull = lowerHull(states);
    for (let h = 0; h + 1 < hull.length; h++) {
      const a = states[hull[h]], b = states[hull[h + 1]];
      const saved = a.params - b.params;
      steps.push({ tensor: t, from: hull[h], to: hull[h + 1], cost: (b.error - a.error) / saved, order: h });
    }
  });
  // Cheapest error per parameter saved first; a tensor's own steps stay in order (their costs grow).
  steps.sort((x, y) => x.cost - y.cost || x.tensor - y.tensor || x.order - y.order);

  let last: Step | undefined;
  for (const st of steps) {
    if (total <= target) break;
    total += all[st.tensor][st.to].params - all[st.tensor][current[st.tensor]].params;
    current[st.tensor] = st.to;
    last = st;
  }
  if (total > target) {
    throw new BudgetError(`cannot meet ${target.toLocaleString('en-US')} parameters: the smallest allocation ${floor > 0 ? `with floor ${floor} ` : ''}keeps ${total.toLocaleString('en-US')}`);
  }
  // Refine the overshooting step: the largest state between its two hull points that still fits.
  if (last) {
    const states = all[last.tensor];
    const base = total - states[last.to].params;
    for (let i = last.from + 1; i < last.to; i++) {
      if (base + states[i].params <= target) {
        total = base + states[i].params;
        current[last.tensor] = i;
        break;
      }
    }
  }

  const choices: BudgetChoice[] = inputs.map((t, i) => {
    const s = all[i][current[i]];
    const compressed = s.level !== undefined;
    return {
      name: t.name,
      method: t.method,
      compressed,
      ...(compressed && t.method === 'svd' ? { rank: s.level } : {}),
      ...(compressed && t.method === 'mpo' ? { chi: s.level, bondDims: s.bondDims } : {}),
      params: s.params,
      denseParams: t.rows * t.cols,
      discardedWeight: s.error,
      relativeError: Math.sqrt(s.error),
    };
  });
  return { choices, target, totalParams: total, denseParams, totalError: choices.reduce((a, c) => a + c.discardedWeight, 0) };
}

/**
 * The baseline the allocation must beat: the same fraction of parameters for every tensor (the
 * largest level whose params <= fraction * dense), its total error and params.
 */
export function uniformAllocation(inputs: BudgetInput[], fraction: number): BudgetAllocation {
  const choices: BudgetChoice[] = inputs.map((t) => {
    const states = budgetStates(t);
    const cap = fraction * t.rows * t.cols;
    const s = states.find((x) => x.params <= cap) ?? states[states.length - 1];
    return {
      name: t.name, method: t.method, compressed: s.level !== undefined,
      ...(t.method === 'svd' ? { rank: s.level } : { chi: s.level, bondDims: s.bondDims }),
      params: s.params, denseParams: t.rows * t.cols, discardedWeight: s.error, relativeError: Math.sqrt(s.error),
    };
  });
  const totalParams = choices.reduce((a, c) => a + c.params, 0);
  const denseParams = choices.reduce((a, c) => a + c.denseParams, 0);
  return { choices, target: Math.floor(fraction * denseParams), totalParams, denseParams, totalError: choices.reduce((a, c) => a + c.discardedWeight, 0) };
}
