import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import {
  GaussianRng, toMatrix, frobenius, matmul, transpose, householderQR, smallSvd, orthonormalityError,
  reconstructionError, symmetricEigen, tridiagonalize, tridiagonalQL,
} from '../../../src/core/linalg/index';
import { gemmModel, OrtGemm } from '../../../src/core/linalg/onnxGemm';
import { wasmWorkspace } from '../../../src/core/linalg/wasm/kernels';
import { jacobiSingularValues } from '../../../src/core/linalg/portable';
import { maxRelDiff } from './fixtures';

test('GaussianRng: deterministic per seed, mean ~0 and variance ~1 over 200k draws', () => {
  const a = new GaussianRng(42).fill(new Float64Array(200000));
  const b = new GaussianRng(42).fill(new Float64Array(200000));
  const c = new GaussianRng(43).fill(new Float64Array(10));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.subarray(0, 10), c);
  let mean = 0, sq = 0;
  for (const x of a) { mean += x; sq += x * x; }
  mean /= a.length;
  const variance = sq / a.length - mean * mean;
  // Standard errors: 1/sqrt(n) = 0.0022 for the mean, sqrt(2/n) = 0.0032 for the variance; 5 sigma.
  assert.ok(Math.abs(mean) < 0.011, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.016, `variance ${variance}`);
});

test('toMatrix checks the length; frobenius and transpose', () => {
  assert.throws(() => toMatrix(new Float32Array(5), 2, 3), /6/);
  const m = toMatrix(Float64Array.from([1, 2, 3, 4, 5, 6]), 2, 3);
  assert.equal(frobenius(m), Math.sqrt(91));
  assert.deepEqual(Array.from(transpose(m).data), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(Array.from(matmul(m, m, false, true).data), [14, 32, 32, 77]);
});

test('householderQR: Y = Q R, orthonormal Q, R upper with non-negative diagonal, also for rank-deficient Y', () => {
  const y = { rows: 60, cols: 12, data: new GaussianRng(1).fill(new Float64Array(720)) };
  for (let i = 0; i < 60; i++) { y.data[i * 12 + 5] = 0; y.data[i * 12 + 7] = 2 * y.data[i * 12 + 1]!; }
  const { q, r } = householderQR(y);
  assert.ok(orthonormalityError(q) < 1e-14);
  const qr = matmul(q, r);
  assert.ok(maxRelDiff(qr.data, y.data, frobenius(y)) < 1e-14);
  for (let i = 0; i < 12; i++) {
    assert.ok(r.data[i * 12 + i]! >= 0);
    for (let j = 0; j < i; j++) assert.equal(r.data[i * 12 + j], 0);
  }
});

test('smallSvd: identities on wide, tall and rank-deficient matrices', async () => {
  for (const [m, n] of [[7, 19], [19, 7], [10, 10]]) {
    const a = { rows: m, cols: n, data: new GaussianRng(m * n).fill(new Float64Array(m * n)) };
    if (m === 10) for (let j = 0; j < n; j++) a.data[9 * n + j] = a.data[j]!; // repeated row -> rank 9
    const { u, s, vt } = await smallSvd(a);
    // Full rank: exact to rounding. Rank-deficient: the zero singular value comes out as Gram noise
    // ~sqrt(eps) s_max (documented limit of smallSvd), which bounds the reconstruction error too.
    assert.ok(reconstructionError(a, u, s, vt) < (m === 10 ? 1e-7 : 1e-13));
    assert.ok(orthonormalityError(u) < 1e-12);
    assert.ok(orthonormalityError(vt, false) < 1e-12);
    for (let i = 1; i < s.length; i++) assert.ok(s[i]! <= s[i - 1]!);
    if (m === 10) assert.ok(s[9]! < 1e-7 * s[0]!);
  }
});

test('symmetric eigensolver: blocked (WebAssembly and TypeScript paths) agrees with the unblocked reduction; QL on a known tridiagonal', async () => {
  // The tridiagonal matrix with 2 on the diagonal and -1 off it has eigenvalues 2 - 2 cos(k pi / (n + 1)).
  const n = 50;
  const d = new Float64Array(n).fill(2), e = new Float64Array(n).fill(-1);
  tridiagonalQL(d, e);
  const want = Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))).sort((x, y) => x - y);
  assert.ok(maxRelDiff(Array.from(d).sort((x, y) => x - y), want, 4) < 1e-14);

  const size = 300;
  const x = { rows: size, cols: size, data: new GaussianRng(9).fill(new Float64Array(size * size)) };
  const a = matmul(x, x, false, true);
  const eigenvalues = async (o: Parameters<typeof tridiagonalize>[2]): Promise<Float64Array> => {
    const t = await tridiagonalize(a.data, size, o);
    tridiagonalQL(t.d, t.e);
    return t.d.sort();
  };
  const unblocked = await eigenvalues({ blockSize: size, wasm: false });
  const blockedJs = await eigenvalues({ blockSize: 16, wasm: false });
  const blockedWasm = await eigenvalues({ blockSize: 16, wasm: true });
  const scale = unblocked[size - 1]!;
  assert.ok(maxRelDiff(blockedJs, unblocked, scale) < 1e-13);
  assert.ok(maxRelDiff(blockedWasm, unblocked, scale) < 1e-13);
  // trace = sum of eigenvalues
  let trace = 0;
  for (let i = 0; i < size; i++) trace += a.data[i * size + i]!;
  assert.ok(Math.abs(unblocked.reduce((p, v) => p + v, 0) - trace) / trace < 1e-12);
  const full = await symmetricEigen(a.data, size, { vectors: true, blockSize: 16 });
  assert.ok(orthonormalityError({ rows: size, cols: size, data: full.vectors! }) < 1e-12);
});

test('WebAssembly SIMD kernel (built from kernels.ll) computes gemv like the TypeScript loop', () => {
  const ws = wasmWorkspace(100 * 100 + 300);
  assert.ok(ws, 'Node 20 supports WebAssembly SIMD, so the kernel must load');
  const n = 100;
  const rng = new GaussianRng(5);
  for (let i = 0; i < n * n + n; i++) ws.f64[i] = rng.normal();
  ws.gemv(0, n, n * n, n * n + n, 3, 97, 2, 91);
  for (let r = 3; r < 97; r++) {
    let want = 0;
    for (let c = 2; c < 91; c++) want += ws.f64[r * n + c]! * ws.f64[n * n + c]!;
    assert.ok(Math.abs(ws.f64[n * n + n + r]! - want) < 1e-12);
  }
  ws.sub(0, 10, n * n, 50); // overlapping forward copy, as in the compaction
});

test('in-memory ONNX Gemm model: onnxruntime loads it and the products match for float32/float64 and all transposes', async () => {
  const bytes = gemmModel('float32', true, false);
  const session = await ort.InferenceSession.create(bytes);
  assert.deepEqual(session.inputNames, ['A', 'B']);
  assert.deepEqual(session.outputNames, ['Y']);
  await session.release();
  const g = new OrtGemm(1);
  try {
    const a = { rows: 9, cols: 13, data: new GaussianRng(1).fill(new Float64Array(117)) };
    const b = { rows: 13, cols: 5, data: new GaussianRng(2).fill(new Float64Array(65)) };
    const want = matmul(a, b);
    const r64 = await g.gemm(a.data, 9, 13, b.data, 13, 5);
    assert.ok(maxRelDiff(r64.data, want.data, frobenius(want)) < 1e-15);
    const at = transpose(a), bt = transpose(b);
    const r64t = await g.gemm(at.data, 13, 9, bt.data, 5, 13, true, true);
    assert.ok(maxRelDiff(r64t.data, want.data, frobenius(want)) < 1e-15);
    const r32 = await g.gemm(Float32Array.from(a.data), 9, 13, Float32Array.from(b.data), 13, 5);
    assert.ok(r32.data instanceof Float32Array);
    assert.ok(maxRelDiff(r32.data, want.data, frobenius(want)) < 1e-6);
    await assert.rejects(g.gemm(a.data, 9, 13, a.data, 9, 13), /inner dimensions/);
  } finally {
    await g.dispose();
  }
});

test('one-sided Jacobi keeps small singular values that the Gram route loses (graded matrix)', async () => {
  // R = Q1 diag(1, 1e-3, 1e-6, 1e-9) Q2: a Gram-based method cannot resolve 1e-9 (its square is below eps * 1).
  const s = [1, 1e-3, 1e-6, 1e-9];
  const q1 = householderQR({ rows: 4, cols: 4, data: new GaussianRng(1).fill(new Float64Array(16)) }).q;
  const q2 = householderQR({ rows: 4, cols: 4, data: new GaussianRng(2).fill(new Float64Array(16)) }).q;
  const d = { rows: 4, cols: 4, data: new Float64Array(16) };
  s.forEach((v, i) => { d.data[i * 4 + i] = v; });
  const r = matmul(matmul(q1, d), q2);
  const got = await jacobiSingularValues(r.data, 4);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(got[i]! - s[i]!) / s[i]! < 1e-6, `s_${i}: ${got[i]}`);
});
