/**
 * The portable eigensolver's pieces against identities with known answers:
 * - A = Q diag(lambda) Q^T with Q a product of Householder reflections (so lambda is exact up to
 *   the rounding of forming A): every tridiagonalisation path must return lambda;
 * - the 1-D Laplacian tridiag(-1, 2, -1) of order n has eigenvalues 2 - 2 cos(k pi / (n + 1));
 * - the WebAssembly kernels against plain loops, onnxruntime's pre-allocated output against its
 *   ordinary result.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GaussianRng } from '../../../src/core/linalg/dense';
import { OrtGemm } from '../../../src/core/linalg/onnxGemm';
import { symmetricEigen, tridiagonalEigenvalues, tridiagonalize, tridiagonalQL } from '../../../src/core/linalg/symmetricEigen';
import { acquireWasmWorkspace, releaseWasmWorkspace, wasmWorkspace } from '../../../src/core/linalg/wasm/kernels';

/** A = H_1 H_2 H_3 diag(lambda) H_3 H_2 H_1 with H_k = I - 2 u_k u_k^T, u_k random unit vectors. */
function withSpectrum(lambda: Float64Array, seed: number): Float64Array {
  const n = lambda.length;
  const rng = new GaussianRng(seed);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) a[i * n + i] = lambda[i]!;
  for (let k = 0; k < 3; k++) {
    const u = rng.fill(new Float64Array(n));
    let s = 0;
    for (const x of u) s += x * x;
    const inv = 1 / Math.sqrt(s);
    for (let i = 0; i < n; i++) u[i]! *= inv;
    // A <- H A H = A - 2 u (u^T A) - 2 (A u) u^T + 4 (u^T A u) u u^T
    const au = new Float64Array(n);
    for (let i = 0; i < n; i++) { let t = 0; for (let j = 0; j < n; j++) t += a[i * n + j]! * u[j]!; au[i] = t; }
    let uau = 0;
    for (let i = 0; i < n; i++) uau += u[i]! * au[i]!;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) a[i * n + j] = a[i * n + j]! - 2 * u[i]! * au[j]! - 2 * au[i]! * u[j]! + 4 * uau * u[i]! * u[j]!;
    }
  }
  // Exactly symmetric.
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) { const v = 0.5 * (a[i * n + j]! + a[j * n + i]!); a[i * n + j] = v; a[j * n + i] = v; }
  return a;
}

function maxDiff(x: Float64Array, y: Float64Array): number {
  let w = 0;
  for (let i = 0; i < x.length; i++) w = Math.max(w, Math.abs(x[i]! - y[i]!));
  return w;
}

test('tridiagonalize: WebAssembly (strips, onnxruntime products into linear memory) and TypeScript paths give the known spectrum', async () => {
  const ort = new OrtGemm(2);
  try {
    const gemmNTInto = (l: Float64Array, r: Float64Array, rows: number, cols: number, k: number, out: Float64Array): Promise<void> =>
      ort.gemmInto(l, rows, k, r, cols, k, false, true, out);
    const gemmNT = async (l: Float64Array, r: Float64Array, rows: number, cols: number, k: number): Promise<Float64Array> =>
      (await ort.gemm(l, rows, k, r, cols, k, false, true)).data;
    for (const n of [65, 203]) {
      // A spectrum with a cluster, zeros and a negative value, scaled so lambda_max = 1.
      const lambda = Float64Array.from({ length: n }, (_, i) => (i < 5 ? 0 : i < 10 ? 0.5 : i === 10 ? -0.25 : i / n));
      const a = withSpectrum(lambda, n);
      const want = Float64Array.from(lambda).sort();
      const configs = [
        { label: 'typescript', wasm: false, blockSize: 16 },
        { label: 'wasm, typescript update', blockSize: 16, stripRows: 40 },
        { label: 'wasm, gemmNTInto strips', blockSize: 16, stripRows: 40, gemmNTInto },
        { label: 'wasm, gemmNT one strip', blockSize: 32, gemmNT },
        { label: 'wasm, nb 48', blockSize: 48, stripRows: 70, gemmNTInto },
      ];
      for (const { label, ...opts } of configs) {
        const t = await tridiagonalize(a, n, opts);
        tridiagonalQL(t.d, t.e);
        const got = Float64Array.from(t.d).sort();
        assert.ok(maxDiff(got, want) < 1e-13, `${label}, n = ${n}: max |lambda - exact| = ${maxDiff(got, want)}`);
      }
      // The input is not modified.
      assert.deepEqual(a, withSpectrum(lambda, n));
    }
  } finally {
    await ort.dispose();
  }
});

test('symmetricEigen: values (root-free QL) and vectors (QL + back-transformation) on the WebAssembly path', async () => {
  const n = 150;
  const lambda = Float64Array.from({ length: n }, (_, i) => Math.cos(i) * (1 + i / 10));
  const a = withSpectrum(lambda, 7);
  const want = Float64Array.from(lambda).sort();
  const onlyValues = await symmetricEigen(a, n, { blockSize: 32, stripRows: 50 });
  assert.ok(maxDiff(onlyValues.values, want) < 1e-12 * 16, `values: ${maxDiff(onlyValues.values, want)}`);
  const full = await symmetricEigen(a, n, { vectors: true, blockSize: 32, stripRows: 50 });
  assert.ok(maxDiff(full.values, want) < 1e-12 * 16);
  // A x_j = lambda_j x_j for every column j.
  const x = full.vectors!;
  let res = 0;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[i * n + k]! * x[k * n + j]!;
      res = Math.max(res, Math.abs(s - full.values[j]! * x[i * n + j]!));
    }
  }
  assert.ok(res < 1e-12 * 16, `residual ${res}`);
});

test('tridiagonalEigenvalues (Pal-Walker-Kahan): the 1-D Laplacian, and agreement with implicit QL on random and graded matrices', () => {
  for (const n of [1, 2, 3, 50, 400]) {
    const d = new Float64Array(n).fill(2), e = new Float64Array(n).fill(-1);
    e[n - 1] = 0;
    tridiagonalEigenvalues(d, e);
    const got = Float64Array.from(d).sort();
    const want = Float64Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))).sort();
    assert.ok(maxDiff(got, want) < 1e-13, `Laplacian n = ${n}: ${maxDiff(got, want)}`);
  }
  const rng = new GaussianRng(11);
  for (const kind of ['random', 'graded', 'split']) {
    const n = 300;
    const d = rng.fill(new Float64Array(n)), e = rng.fill(new Float64Array(n));
    e[n - 1] = 0;
    if (kind === 'graded') for (let i = 0; i < n; i++) { d[i]! *= 10 ** -(i % 9); e[i]! *= 10 ** -(i % 9); }
    if (kind === 'split') for (let i = 0; i < n; i += 4) { d[i] = 0; e[i] = 0; }
    const d1 = Float64Array.from(d), e1 = Float64Array.from(e);
    tridiagonalQL(d1, e1);
    const d2 = Float64Array.from(d);
    tridiagonalEigenvalues(d2, Float64Array.from(e));
    d1.sort(); d2.sort();
    const scale = Math.max(Math.abs(d1[0]!), Math.abs(d1[n - 1]!));
    assert.ok(maxDiff(d1, d2) < 1e-13 * scale, `${kind}: ${maxDiff(d1, d2) / scale}`);
    let trace = 0, sum = 0;
    for (let i = 0; i < n; i++) { trace += d[i]!; sum += d2[i]!; }
    assert.ok(Math.abs(trace - sum) < 1e-12 * n * scale, `${kind}: trace`);
  }
});

test('WebAssembly kernels symvu (upper triangle only) and axpyt match plain loops', () => {
  const n = 37, ld = 41;
  const ws = wasmWorkspace(ld * n + 6 * ld);
  if (!ws) { assert.fail('WebAssembly SIMD is unavailable in this Node'); }
  const f = ws.f64;
  const sym = (i: number, j: number): number => Math.sin(Math.min(i, j) * 7 + Math.max(i, j) * 3);
  // Lower triangle filled with NaN: symvu must never read it.
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) f[i * ld + j] = j >= i ? sym(i, j) : NaN;
  const vAt = ld * n, yAt = vAt + ld, xAt = yAt + ld, cAt = xAt + 3 * ld;
  for (let i = 0; i < n; i++) f[vAt + i] = Math.cos(i);
  for (const [lo, hi] of [[0, n], [3, n], [4, 30], [5, 6]] as const) {
    f.fill(7, yAt, yAt + ld);
    ws.symvu(0, ld, vAt, yAt, lo, hi);
    for (let r = lo; r < hi; r++) {
      let s = 0;
      for (let c = lo; c < hi; c++) s += sym(r, c) * f[vAt + c]!;
      assert.ok(Math.abs(s - f[yAt + r]!) < 1e-13, `symvu [${lo}, ${hi}) row ${r}`);
    }
    if (lo > 0) assert.equal(f[yAt + lo - 1], 7);
    assert.equal(f[yAt + hi], 7);
  }
  for (let i = 0; i < 3 * ld; i++) f[xAt + i] = Math.sin(i);
  f[cAt] = 1; f[cAt + 1] = -2; f[cAt + 2] = 0.5;
  f.fill(1, yAt, yAt + ld);
  ws.axpyt(xAt, ld, cAt, yAt, 3, 2, 30);
  for (let r = 0; r < ld; r++) {
    const want = r >= 2 && r < 30 ? 1 - (f[xAt + r]! - 2 * f[xAt + ld + r]! + 0.5 * f[xAt + 2 * ld + r]!) : 1;
    assert.ok(Math.abs(f[yAt + r]! - want) < 1e-14, `axpyt row ${r}`);
  }
});

test('OrtGemm.gemmInto writes the product into a view of a larger array, like gemm', async () => {
  const ort = new OrtGemm(1);
  try {
    const rng = new GaussianRng(3);
    const a = rng.fill(new Float64Array(30 * 20)), b = rng.fill(new Float64Array(25 * 20));
    const big = new Float64Array(1000).fill(-1);
    const out = big.subarray(100, 100 + 30 * 25);
    await ort.gemmInto(a.subarray(0, 600), 30, 20, b, 25, 20, false, true, out);
    const ref = await ort.gemm(a, 30, 20, b, 25, 20, false, true);
    assert.deepEqual(Array.from(out), Array.from(ref.data));
    assert.equal(big[99], -1);
    assert.equal(big[100 + 750], -1);
    await assert.rejects(ort.gemmInto(a, 30, 20, b, 25, 20, false, true, big.subarray(0, 10)), /output has 10 elements/);
  } finally {
    await ort.dispose();
  }
});

test('symmetricEigen on a rank-deficient matrix with exactly zero rows (a Gram of a matrix with zero rows): converges, residual and known values', async () => {
  // Entries only between even indices (a rank-10 Gram block), odd rows/columns zero, and a
  // decoupled diagonal tail lambda = i for the last 20 indices: known eigenvalues 0 (many), i (tail).
  const n = 300;
  const r = new GaussianRng(n).fill(new Float64Array(n * 10));
  const a = new Float64Array(n * n);
  for (let i = 0; i < n - 20; i += 2) {
    for (let j = 0; j < n - 20; j += 2) {
      let s = 0;
      for (let k = 0; k < 10; k++) s += r[i * 10 + k]! * r[j * 10 + k]!;
      a[i * n + j] = s;
    }
  }
  for (let i = n - 20; i < n; i++) a[i * n + i] = i;
  let trace = 0;
  for (let i = 0; i < n; i++) trace += a[i * n + i]!;
  const scale = n;
  for (const opts of [{ blockSize: 16, stripRows: 30 }, { wasm: false, blockSize: 16 }]) {
    const values = (await symmetricEigen(a, n, opts)).values;
    const full = await symmetricEigen(a, n, { ...opts, vectors: true });
    assert.ok(maxDiff(values, full.values) < 1e-12 * scale);
    // n - 20 - 10 zero eigenvalues, the tail exactly, and the trace.
    for (let i = 0; i < n - 30; i++) assert.ok(Math.abs(values[i]!) < 1e-12 * scale, `lambda_${i} = ${values[i]}`);
    for (let i = 0; i < 20; i++) assert.ok(values.some((v) => Math.abs(v - (n - 20 + i)) < 1e-12 * scale), `tail value ${n - 20 + i}`);
    let sum = 0;
    for (const v of values) sum += v;
    assert.ok(Math.abs(sum - trace) < 1e-11 * scale);
    const x = full.vectors!;
    let res = 0;
    for (let j = 0; j < n; j += 7) {
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += a[i * n + k]! * x[k * n + j]!;
        res = Math.max(res, Math.abs(s - full.values[j]! * x[i * n + j]!));
      }
    }
    assert.ok(res < 1e-12 * scale, `residual ${res}`);
  }
});

test('kept WebAssembly workspace: reused once released, never shared by concurrent decompositions', async () => {
  const a = acquireWasmWorkspace(1000);
  const b = acquireWasmWorkspace(1000);
  assert.ok(a && b);
  assert.notEqual(a, b, 'a busy workspace is not handed out again');
  releaseWasmWorkspace(a);
  const c = acquireWasmWorkspace(500);
  assert.equal(c, a, 'the released one is reused');
  releaseWasmWorkspace(b);
  releaseWasmWorkspace(c!);
  // Two decompositions interleaved at their onnxruntime awaits both get the right spectrum.
  const ort = new OrtGemm(1);
  try {
    const gemmNTInto = (l: Float64Array, r: Float64Array, rows: number, cols: number, k: number, out: Float64Array): Promise<void> =>
      ort.gemmInto(l, rows, k, r, cols, k, false, true, out);
    const n = 180;
    const l1 = Float64Array.from({ length: n }, (_, i) => i / n), l2 = Float64Array.from({ length: n }, (_, i) => -1 - i);
    const [t1, t2] = await Promise.all([
      tridiagonalize(withSpectrum(l1, 1), n, { blockSize: 16, stripRows: 40, gemmNTInto }),
      tridiagonalize(withSpectrum(l2, 2), n, { blockSize: 16, stripRows: 40, gemmNTInto }),
    ]);
    for (const [t, l] of [[t1, l1], [t2, l2]] as const) {
      tridiagonalEigenvalues(t.d, t.e);
      assert.ok(maxDiff(Float64Array.from(t.d).sort(), Float64Array.from(l).sort()) < 1e-12 * n);
    }
  } finally {
    await ort.dispose();
  }
});
