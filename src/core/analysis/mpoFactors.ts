/**
 * Site factorisations for matrix product operators: a weight matrix W [out, in] becomes an MPO with
 * N sites when out = o_1 o_2 ... o_N and in = i_1 i_2 ... i_N (the same N on both sides).
 *
 * Automatic choice (`balancedFactors`): the prime factors of a size are packed greedily into N
 * sites — largest prime first, each into the site whose running product is smallest (the "longest
 * processing time" rule applied to log p, which keeps the products as equal as possible) — and the
 * sites are listed in ascending order (8,16 rather than 16,8; both are valid MPOs, ascending is the
 * convention of CompactifAI and of the PicoGPT MPO paper).
 *
 * Sizes whose prime factors cannot fill N balanced sites (61, 509, 172 = 4 * 43 ...) are handled by
 * `planSites` with one of two documented strategies:
 * - 'pad': zero-pad the side to the smallest size >= n (at most `maxPadFraction` larger) whose
 *   balanced factorisation is good; the padded rows/columns are zero, so ||W_pad||_F = ||W||_F, the
 *   cores (and their parameter count) are those of the padded matrix, and reconstruction crops the
 *   padding away again;
 * - 'fewer-sites': use the largest N' < N for which both sides factorise well without padding
 *   (N' = 1 always does: the 1-site MPO is the matrix itself).
 * 'auto' tries, for N' = N, N-1, ..., 1: exact factorisation, then padding; the first that works wins.
 */

/** Thrown for site factorisations that do not fit the tensor (the CLI turns it into a usage error). */
export class FactorisationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FactorisationError';
  }
}

/** Prime factors of n >= 1 with multiplicity, ascending (trial division: sizes here are < 2^31). */
export function primeFactors(n: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new FactorisationError(`cannot factorise ${n}: expected a positive integer`);
  const out: number[] = [];
  let m = n;
  for (let p = 2; p * p <= m; p += p === 2 ? 1 : 2) {
    while (m % p === 0) { out.push(p); m /= p; }
  }
  if (m > 1) out.push(m);
  return out;
}

/**
 * Packs the prime factors of n into `sites` factors whose products are as equal as possible: primes
 * in descending order, each multiplied into the currently smallest factor (greedy LPT in log space).
 * Factors of 1 appear when n has fewer prime factors than sites. Returned ascending.
 */
export function balancedFactors(n: number, sites: number): number[] {
  if (!Number.isInteger(sites) || sites < 1) throw new FactorisationError(`number of sites must be a positive integer, got ${sites}`);
  const bins = new Array<number>(sites).fill(1);
  for (const p of primeFactors(n).reverse()) {
    let j = 0;
    for (let b = 1; b < sites; b++) if (bins[b] < bins[j]) j = b;
    bins[j] *= p;
  }
  return bins.sort((a, b) => a - b);
}

/** max factor / min factor: 1 is perfectly balanced. */
export function imbalance(factors: number[]): number {
  return Math.max(...factors) / Math.min(...factors);
}

export interface SitePlanOptions {
  /** 'auto' (default), 'pad', 'fewer-sites' or 'exact' (fail rather than pad or drop sites). */
  strategy?: 'auto' | 'pad' | 'fewer-sites' | 'exact';
  /**
   * A factorisation is "good" when no site has factor 1 (unless the side has size 1) and
   * max/min <= maxImbalance. Default 3: accepts 65 = 5 * 13 (2.6), rejects 172 = 4 * 43 (10.75).
   */
  maxImbalance?: number;
  /** Largest padding allowed, as a fraction of the side's size (default 0.125). */
  maxPadFraction?: number;
}

export interface SitePlan {
  outFactors: number[];
  inFactors: number[];
  /** Sizes after padding (= products of the factors). */
  paddedOut: number;
  paddedIn: number;
  /** Zero rows / columns appended (0 when not padded). */
  padding: { rows: number; cols: number };
  /** Which strategy produced the plan. */
  strategy: 'exact' | 'pad' | 'fewer-sites' | 'user';
  /** The number of sites asked for (differs from outFactors.length under 'fewer-sites'). */
  requestedSites: number;
}

function isGood(n: number, f: number[], maxImbalance: number): boolean {
  if (n === 1) return true;
  if (f.length === 1) return true;
  return Math.min(...f) >= 2 && imbalance(f) <= maxImbalance;
}

/** Smallest n' in [n, n (1 + maxPadFraction)] whose balanced factorisation into `sites` is good. */
function paddedSize(n: number, sites: number, maxImbalance: number, maxPadFraction: number): number | undefined {
  const limit = Math.floor(n * (1 + maxPadFraction));
  for (let m = n; m <= Math.max(limit, n); m++) {
    if (isGood(m, balancedFactors(m, sites), maxImbalance)) return m;
  }
  return undefined;
}

/**
 * Chooses out and in factorisations with the same number of sites for an [out, in] matrix, following
 * the strategy described at the top of this file.
 */
export function planSites(out: number, inn: number, sites: number, opts: SitePlanOptions = {}): SitePlan {
  const strategy = opts.strategy ?? 'auto';
  const maxImbalance = opts.maxImbalance ?? 3;
  const maxPadFraction = opts.maxPadFraction ?? 0.125;
  if (!Number.isInteger(sites) || sites < 1) throw new FactorisationError(`--sites must be a positive integer, got ${sites}`);
  const tryExact = (n: number) => {
    const fo = balancedFactors(out, n), fi = balancedFactors(inn, n);
    return isGood(out, fo, maxImbalance) && isGood(inn, fi, maxImbalance) ? { fo, fi } : undefined;
  };
  const tryPad = (n: number) => {
    const po = paddedSize(out, n, maxImbalance, maxPadFraction);
    const pi = paddedSize(inn, n, maxImbalance, maxPadFraction);
    return po !== undefined && pi !== undefined ? { po, pi } : undefined;
  };
  const make = (fo: number[], fi: number[], s: SitePlan['strategy']): SitePlan => {
    const po = fo.reduce((a, b) => a * b, 1), pi = fi.reduce((a, b) => a * b, 1);
    return { outFactors: fo, inFactors: fi, paddedOut: po, paddedIn: pi, padding: { rows: po - out, cols: pi - inn }, strategy: s, requestedSites: sites };
  };
  const exact = tryExact(sites);
  if (exact) return make(exact.fo, exact.fi, 'exact');
  if (strategy === 'exact') {
    throw new FactorisationError(`${out} x ${inn} has no balanced ${sites}-site factorisation (out -> ${balancedFactors(out, sites).join(',')}, in -> ${balancedFactors(inn, sites).join(',')}); allow padding or fewer sites`);
  }
  for (let n = sites; n >= 1; n--) {
    if (n < sites && strategy !== 'pad') {
      const e = tryExact(n);
      if (e) return make(e.fo, e.fi, 'fewer-sites');
    }
    if (strategy !== 'fewer-sites') {
      const p = tryPad(n);
      if (p) return make(balancedFactors(p.po, n), balancedFactors(p.pi, n), n === sites ? 'pad' : 'fewer-sites');
    }
  }
  // Unreachable: n = 1 always factorises exactly.
  return make([out], [inn], 'fewer-sites');
}

/**
 * Validates user-given factorisations: both lists must have the same length and multiply to the
 * matrix's rows / columns (or, with `allowPadding`, to at least that — the excess is zero padding).
 */
export function userSites(out: number, inn: number, outFactors: number[], inFactors: number[], opts: { allowPadding?: boolean } = {}): SitePlan {
  for (const [label, f] of [['out-factors', outFactors], ['in-factors', inFactors]] as const) {
    if (f.length === 0 || f.some((x) => !Number.isInteger(x) || x < 1)) throw new FactorisationError(`${label} must be positive integers, got ${f.join(',')}`);
  }
  if (outFactors.length !== inFactors.length) {
    throw new FactorisationError(`out-factors ${outFactors.join(',')} has ${outFactors.length} sites but in-factors ${inFactors.join(',')} has ${inFactors.length}; an MPO needs the same number on both sides`);
  }
  const po = outFactors.reduce((a, b) => a * b, 1), pi = inFactors.reduce((a, b) => a * b, 1);
  const check = (label: string, p: number, n: number, what: string) => {
    if (p === n) return;
    if (opts.allowPadding && p > n) return;
    throw new FactorisationError(`${label} ${label === 'out-factors' ? outFactors.join(',') : inFactors.join(',')} multiply to ${p} but the tensor has ${n} ${what}${p > n ? ' (allow padding to zero-pad)' : ''}`);
  };
  check('out-factors', po, out, 'rows');
  check('in-factors', pi, inn, 'columns');
  return { outFactors: [...outFactors], inFactors: [...inFactors], paddedOut: po, paddedIn: pi, padding: { rows: po - out, cols: pi - inn }, strategy: 'user', requestedSites: outFactors.length };
}
