/**
 * Estimate mode (stochastic Lanczos quadrature, src/core/analysis/estimate.ts) on large matrices:
 *
 * A. 4096 x 14336 float32 (a Llama-8B FFN shape): estimate-mode time against scipy's exact
 *    `scipy.linalg.svd(W, compute_uv=False, lapack_driver='gesdd')` on the same matrix, run through
 *    /usr/bin/python3 in the same session (the matrix goes over in a temporary .npy, removed after);
 *    accuracy of the estimated entropies against the exact ones from scipy's singular values.
 *    The matrix: seeded Gaussian entries with column scales 1/sqrt(1 + j/64) (a decaying spectrum,
 *    not a flat Marchenko-Pastur bulk) plus 8 planted rank-one spikes.
 *    Target: estimate mode >= 10x faster than scipy, entropy within 2%; also printed: the top-32
 *    singular values against scipy's (max |s_i - sigma_i| / sigma_1; target < 1e-4, the default
 *    topKTolerance), next to a randomized SVD with 2 power iterations (what estimate mode used before).
 * B. 4096 x 4096 matrices with known spectra W = U diag(s) V^T (power-law, exponential, flat bulk with
 *    outliers); U and V are randomized Hadamard transforms (H D1 H D2 / n with random sign diagonals),
 *    orthogonal and fully delocalised, built in O(n^2 log n) instead of an O(n^3) QR.
 *    Plus a gapless one: the quarter-circle law (singular values of a square Gaussian matrix),
 *    s_i = F^-1(1 - (i - 1/2) / n) with F(x) = (x sqrt(4 - x^2) / 2 + 2 asin(x / 2)) / pi on [0, 2].
 *    Target: entropy and Renyi-2 within 2% of the exact values of s; top-32 within 1e-4 s_1.
 *
 *   npx tsx bench/estimate.bench.ts            # A and B
 *   npx tsx bench/estimate.bench.ts --no-scipy # B and our side of A only
 *   npx tsx bench/estimate.bench.ts --part A   # only A (or only B)
 *   npx tsx bench/estimate.bench.ts --runs 3   # timed runs of ours (median); scipy runs once (~15 s+)
 *
 * Timings exclude generating the matrix and loading it (python: np.load; ours: it is in memory).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLinalgBackend } from '../src/core/linalg/index';
import type { LinalgBackend, Matrix } from '../src/core/linalg/types';
import { estimateSpectrum } from '../src/core/analysis/estimate';
import { vonNeumannEntropy, renyi2Entropy } from '../src/core/analysis/spectrum';
import { Random } from '../src/core/analysis/random';
import { randomHadamardOrthogonal } from '../test/support/orthogonal';

const PYTHON = '/usr/bin/python3';
const NO_SCIPY = process.argv.includes('--no-scipy');
const runsAt = process.argv.indexOf('--runs');
const RUNS = runsAt >= 0 ? Math.max(1, Number(process.argv[runsAt + 1])) : 3;
const partAt = process.argv.indexOf('--part');
const PART = partAt >= 0 ? process.argv[partAt + 1] : 'AB';

/** max_i |a_i - b_i| / b_0 over the first k. */
function topKError(a: ArrayLike<number>, b: ArrayLike<number>, k: number): number {
  let worst = 0;
  for (let i = 0; i < k; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / b[0];
}

/** The quarter-circle quantile: x in [0, 2] with F(x) = q, F(x) = (x sqrt(4 - x^2) / 2 + 2 asin(x / 2)) / pi (bisection). */
function quarterCircleQuantile(q: number): number {
  let lo = 0, hi = 2;
  for (let it = 0; it < 60; it++) {
    const x = (lo + hi) / 2;
    const F = ((x * Math.sqrt(4 - x * x)) / 2 + 2 * Math.asin(x / 2)) / Math.PI;
    if (F < q) lo = x; else hi = x;
  }
  return (lo + hi) / 2;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** A .npy (format 1.0) file: magic, version, u16 header length, a dict literal padded so data starts at a multiple of 64. */
function saveNpy(file: string, m: Matrix): void {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${m.rows}, ${m.cols}), }`;
  const pad = 64 - ((10 + dict.length + 1) % 64);
  const header = dict + ' '.repeat(pad % 64) + '\n';
  const prefix = Buffer.from([0x93, ...Buffer.from('NUMPY', 'latin1'), 1, 0, header.length & 0xff, header.length >> 8]);
  writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength)]));
}

const SCIPY = String.raw`
import sys, json, time, numpy as np, scipy.linalg
W = np.load(sys.argv[1])
t = time.perf_counter()
s = scipy.linalg.svd(W, compute_uv=False, lapack_driver='gesdd')
dt = time.perf_counter() - t
s = s.astype(np.float64)
p = s**2 / np.sum(s**2)
p = p[p > 0]
print(json.dumps({"seconds": dt, "entropy": float(-np.sum(p * np.log(p))), "renyi2": float(-np.log(np.sum(p**2))), "s1": float(s[0]), "top": [float(x) for x in s[:64]]}))
`;

async function partA(backend: LinalgBackend): Promise<string[]> {
  const rows = 4096, cols = 14336;
  const rng = new Random(2024);
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j] = (0.02 * rng.gaussian()) / Math.sqrt(1 + j / 64);
  for (let spike = 0; spike < 8; spike++) {
    const u = Array.from({ length: rows }, () => rng.gaussian() / Math.sqrt(rows));
    const v = Array.from({ length: cols }, () => rng.gaussian() / Math.sqrt(cols));
    const strength = 40 / (spike + 1);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[i * cols + j] += strength * u[i] * v[j];
  }
  const W: Matrix = { rows, cols, data };
  const times: number[] = [];
  let est = await estimateSpectrum(backend, W);
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    est = await estimateSpectrum(backend, W);
    times.push((performance.now() - t) / 1000);
  }
  const ours = median(times);
  const k = est.topSingularValues.length;
  const rsvd = await backend.randomizedSvd(W, k, { powerIterations: 2, oversample: 10, seed: 1, vectors: false });
  const lines = [`A. ${rows} x ${cols} float32, estimate mode (${est.probes} probes, ${est.lanczosSteps} Lanczos steps, top-${k}), ${backend.description}`, ''];
  lines.push('| | seconds | entropy S (95% CI) | Renyi-2 | s_1 |', '| --- | --- | --- | --- | --- |');
  const S = est.vonNeumannEntropy, S2 = est.renyi2Entropy;
  lines.push(`| ours, estimate (median of ${RUNS}; ${times.map((x) => x.toFixed(2)).join(', ')}) | ${ours.toFixed(2)} | ${S.estimate.toFixed(4)} (${S.low.toFixed(4)}-${S.high.toFixed(4)}) | ${S2.estimate.toFixed(4)} | ${est.topSingularValues[0].toFixed(4)} |`);
  if (!NO_SCIPY) {
    const dir = mkdtempSync(join(tmpdir(), 'ts-estimate-bench-'));
    try {
      const file = join(dir, 'w.npy');
      saveNpy(file, W);
      const r = spawnSync(PYTHON, ['-c', SCIPY, file], { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }, maxBuffer: 1 << 20 });
      if (r.status !== 0) {
        lines.push(`| scipy gesdd | failed: ${(r.stderr || '').trim().split('\n').pop()} | | | |`);
      } else {
        const py = JSON.parse(r.stdout.trim());
        lines.push(`| scipy gesdd, exact (1 run) | ${py.seconds.toFixed(2)} | ${py.entropy.toFixed(4)} | ${py.renyi2.toFixed(4)} | ${py.s1.toFixed(4)} |`);
        const speedup = py.seconds / ours;
        const errS = Math.abs(S.estimate / py.entropy - 1), errS2 = Math.abs(S2.estimate / py.renyi2 - 1);
        lines.push('', `speed-up ${speedup.toFixed(1)}x (target >= 10x: ${speedup >= 10 ? 'PASS' : 'MISS'}); entropy error ${(errS * 100).toFixed(3)}% (target < 2%: ${errS < 0.02 ? 'PASS' : 'MISS'}), Renyi-2 error ${(errS2 * 100).toFixed(3)}%; exact S inside the 95% interval: ${py.entropy >= S.low && py.entropy <= S.high ? 'yes' : 'no'}`);
        const errTop = topKError(est.topSingularValues, py.top, k), errRsvd = topKError(rsvd.S, py.top, k);
        lines.push(`top-${k} singular values: max error ${errTop.toExponential(2)} s_1 (target < 1e-4: ${errTop < 1e-4 ? 'PASS' : 'MISS'}); Lanczos' estimate ${est.topKErrorEstimate?.toExponential(2) ?? 'n/a'}, residual bound ${est.topKResidual.toExponential(2)}, converged ${est.topKConverged}; randomized SVD with 2 power iterations (before): ${errRsvd.toExponential(2)} s_1`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return lines;
}


async function partB(backend: LinalgBackend): Promise<string[]> {
  const n = 4096;
  const rng = new Random(77);
  const U = randomHadamardOrthogonal(n, rng);
  const V = randomHadamardOrthogonal(n, rng);
  const Vt = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Vt[i * n + j] = V[j * n + i];
  const spectra: Record<string, number[]> = {
    'power law s_i = i^-0.6': Array.from({ length: n }, (_, i) => (i + 1) ** -0.6),
    'exponential s_i = exp(-i/200)': Array.from({ length: n }, (_, i) => Math.exp(-i / 200)),
    'flat bulk in [1, 1.1] + 6 outliers': Array.from({ length: n }, (_, i) => (i < 6 ? 30 - 4 * i : 1 + 0.1 * rng.uniform())).sort((a, b) => b - a),
    'quarter circle (square Gaussian), gapless top': Array.from({ length: n }, (_, i) => quarterCircleQuantile(1 - (i + 0.5) / n)),
  };
  const lines = [`B. ${n} x ${n} with known spectra (randomized-Hadamard singular vectors), ${backend.description}`, ''];
  lines.push('| spectrum | exact S | estimated S (95% CI) | error | exact S_2 | estimated S_2 | error | top-32 error / s_1 (randomized q = 2) | seconds | target < 2%, 1e-4 |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [name, s] of Object.entries(spectra)) {
    const US = new Float32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) US[i * n + j] = U[i * n + j] * s[j];
    const W = await backend.gemm({ rows: n, cols: n, data: US }, { rows: n, cols: n, data: Vt });
    const t = performance.now();
    const e = await estimateSpectrum(backend, W);
    const secs = (performance.now() - t) / 1000;
    const S = vonNeumannEntropy(s), S2 = renyi2Entropy(s);
    const err = Math.abs(e.vonNeumannEntropy.estimate / S - 1), err2 = Math.abs(e.renyi2Entropy.estimate / S2 - 1);
    const k = e.topSingularValues.length;
    const errTop = topKError(e.topSingularValues, s, k);
    const rsvd = await backend.randomizedSvd(W, k, { powerIterations: 2, oversample: 10, seed: 1, vectors: false });
    lines.push(`| ${name} | ${S.toFixed(4)} | ${e.vonNeumannEntropy.estimate.toFixed(4)} (${e.vonNeumannEntropy.low.toFixed(4)}-${e.vonNeumannEntropy.high.toFixed(4)}) | ${(err * 100).toFixed(3)}% | ${S2.toFixed(4)} | ${e.renyi2Entropy.estimate.toFixed(4)} | ${(err2 * 100).toFixed(3)}% | ${errTop.toExponential(1)} (${topKError(rsvd.S, s, k).toExponential(1)}) | ${secs.toFixed(2)} | ${err < 0.02 && err2 < 0.02 && errTop < 1e-4 ? 'PASS' : 'MISS'} |`);
  }
  return lines;
}

(async () => {
  const backend = await getLinalgBackend('auto');
  const header = `estimate.bench: ${new Date().toISOString()}, ${cpus().length} cores (${cpus()[0]?.model}), load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}, Node ${process.version}`;
  console.log(header, '\n');
  if (PART.includes('A')) console.log((await partA(backend)).join('\n'), '\n');
  if (PART.includes('B')) console.log((await partB(backend)).join('\n'));
  await backend.dispose();
})();
