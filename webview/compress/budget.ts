/**
 * The bond-dimension editor's arithmetic, kept to summing tables the host precomputed: for tensor t
 * and chi = 1..C_t, params_t[chi - 1] (sum_k chi_{k-1} o_k i_k chi_k) and errors_t[chi - 1] (relative
 * error estimate sqrt(sum_k discarded_k) / ||W||_F, the TT-SVD bound of Oseledets Thm 2.2 from the
 * exact bond spectra). Both are monotone in chi: params non-decreasing, errors non-increasing.
 *
 * Every update touches O(T) table entries for a global chi, O(T log C) for an error budget (binary
 * search per tensor), and O(T log C log(1/tol)) for a parameter budget (bisection over a common error
 * level). The optional `probe` counts entries read, so tests check the complexity without timing.
 */
export interface ChiTable {
  name: string;
  /** rows * cols: the dense parameter count. */
  dense: number;
  params: ArrayLike<number>;
  errors: ArrayLike<number>;
}

export interface Probe {
  reads: number;
}

export type BudgetMode =
  | { kind: 'chi'; chi: number }
  | { kind: 'error'; error: number }
  /** Keep at most this fraction (0..1] of the selected tensors' dense parameters. */
  | { kind: 'params'; fraction: number };

/** The largest chi a table covers. */
export function maxChi(t: ChiTable): number {
  return t.params.length;
}

function read(a: ArrayLike<number>, i: number, probe?: Probe): number {
  if (probe) probe.reads++;
  return a[i];
}

/** chi clamped to the table. */
export function clampChi(t: ChiTable, chi: number): number {
  return Math.min(maxChi(t), Math.max(1, Math.round(chi)));
}

/** Smallest chi with errors[chi - 1] <= target (binary search; the largest chi when none reaches it). */
export function chiForError(t: ChiTable, target: number, probe?: Probe): number {
  let lo = 1, hi = maxChi(t);
  if (hi === 0) return 0;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (read(t.errors, mid - 1, probe) <= target) hi = mid; else lo = mid + 1;
  }
  return lo;
}

export interface Totals {
  /** Sum of dense params of the selected tensors. */
  before: number;
  /** Sum of the chosen params of the selected tensors. */
  after: number;
  /** before / after (> 1 means fewer parameters). */
  ratio: number;
  /** Worst relative error among the selected tensors. */
  maxError: number;
  /** sqrt(sum_t e_t^2 ||W_t||^2 / sum_t ||W_t||^2) is not knowable without norms; the mean error instead. */
  meanError: number;
}

/** params and error of a tensor at chi (reads 2 entries). */
export function at(t: ChiTable, chi: number, probe?: Probe): { params: number; error: number } {
  const c = clampChi(t, chi);
  return { params: read(t.params, c - 1, probe), error: read(t.errors, c - 1, probe) };
}

/**
 * Per-tensor chi for a budget. `overrides` (name -> chi) win over the global choice and count against
 * a parameter budget as fixed; a parameter budget spreads over the `selected` tensors only. Returns
 * chi per tensor in table order.
 */
export function allocate(tables: ChiTable[], mode: BudgetMode, overrides: ReadonlyMap<string, number> = new Map(), probe?: Probe, selected?: ReadonlySet<string>): number[] {
  const out = new Array<number>(tables.length);
  if (mode.kind === 'chi') {
    for (let i = 0; i < tables.length; i++) out[i] = clampChi(tables[i], overrides.get(tables[i].name) ?? mode.chi);
    return out;
  }
  if (mode.kind === 'error') {
    for (let i = 0; i < tables.length; i++) {
      const o = overrides.get(tables[i].name);
      out[i] = o !== undefined ? clampChi(tables[i], o) : chiForError(tables[i], mode.error, probe);
    }
    return out;
  }
  // Parameter budget over the selected tensors (all when no selection is given): the smallest common
  // error level whose per-tensor chis fit the budget (bisection on the level; the total params at a
  // level are non-increasing in it). Unselected tensors get the full chi and do not count.
  const inBudget = (t: ChiTable) => !selected || selected.has(t.name);
  let budget = mode.fraction * tables.reduce((a, t) => a + (inBudget(t) ? t.dense : 0), 0);
  const free: number[] = [];
  for (let i = 0; i < tables.length; i++) {
    if (!inBudget(tables[i])) { out[i] = maxChi(tables[i]); continue; }
    const o = overrides.get(tables[i].name);
    if (o !== undefined) { out[i] = clampChi(tables[i], o); budget -= at(tables[i], out[i], probe).params; } else free.push(i);
  }
  const paramsAt = (level: number) => {
    let total = 0;
    for (const i of free) total += read(tables[i].params, chiForError(tables[i], level, probe) - 1, probe);
    return total;
  };
  let lo = 0, hi = 1;
  if (paramsAt(lo) <= budget) hi = lo;
  else {
    for (let iter = 0; iter < 24; iter++) { // level resolution 2^-24 ≈ 6e-8
      const mid = (lo + hi) / 2;
      if (paramsAt(mid) <= budget) hi = mid; else lo = mid;
    }
  }
  for (const i of free) out[i] = chiForError(tables[i], hi, probe);
  return out;
}

/** Totals over the selected tensors for the chosen chis (2 reads per tensor). */
export function totals(tables: ChiTable[], chis: number[], selected?: ReadonlySet<string>, probe?: Probe): Totals {
  let before = 0, after = 0, maxError = 0, sumError = 0, n = 0;
  for (let i = 0; i < tables.length; i++) {
    const t = tables[i];
    if (selected && !selected.has(t.name)) continue;
    const r = at(t, chis[i], probe);
    before += t.dense;
    after += r.params;
    maxError = Math.max(maxError, r.error);
    sumError += r.error;
    n++;
  }
  return { before, after, ratio: after > 0 ? before / after : Infinity, maxError, meanError: n ? sumError / n : 0 };
}

/**
 * Model-level numbers: parameters of the whole model after compression (untouched tensors count in
 * full) and the estimated file size — factored storage shrinks the file by the parameters saved times
 * the bytes per parameter of the file; dense storage (the reconstructed matrices) keeps its size.
 */
export function modelTotals(totalParams: number, sizeOnDisk: number, t: Totals, factorized: boolean): { paramsAfter: number; ratio: number; fileBytes: number } {
  const paramsAfter = totalParams - t.before + t.after;
  const bytesPerParam = totalParams > 0 ? sizeOnDisk / totalParams : 4;
  return {
    paramsAfter,
    ratio: paramsAfter > 0 ? totalParams / paramsAfter : Infinity,
    fileBytes: factorized ? Math.round(sizeOnDisk - (t.before - t.after) * bytesPerParam) : sizeOnDisk,
  };
}

/** Validates a site factorisation typed by the user: positive integers, same count, products = shape. */
export function validateFactors(shape: [number, number], outText: string, inText: string): { ok: true; outFactors: number[]; inFactors: number[] } | { ok: false; message: string } {
  const parse = (s: string) => s.split(/[\s,x×*]+/).filter(Boolean).map(Number);
  const o = parse(outText), i = parse(inText);
  if (o.length === 0 || i.length === 0) return { ok: false, message: 'both factor lists are needed' };
  if ([...o, ...i].some((x) => !Number.isInteger(x) || x < 1)) return { ok: false, message: 'factors must be positive integers' };
  if (o.length !== i.length) return { ok: false, message: `out has ${o.length} sites, in has ${i.length}: an MPO needs the same number` };
  const po = o.reduce((a, b) => a * b, 1), pi = i.reduce((a, b) => a * b, 1);
  if (po !== shape[0]) return { ok: false, message: `out factors multiply to ${po}, the tensor has ${shape[0]} rows` };
  if (pi !== shape[1]) return { ok: false, message: `in factors multiply to ${pi}, the tensor has ${shape[1]} columns` };
  return { ok: true, outFactors: o, inFactors: i };
}
