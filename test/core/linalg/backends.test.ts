import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CancelledError } from '../../../src/core/checkpoint/errors';
import {
  getLinalgBackend, nativeAvailable, frobenius, orthonormalityError, reconstructionError, matmul, GaussianRng,
  type LinalgBackend, type Matrix,
} from '../../../src/core/linalg/index';
import { probeNative } from '../../../src/core/linalg/native';
import { SHARED, loadReference, maxRelDiff, readSafetensorsF32, withSpectrum } from './fixtures';

const FIXTURES = {
  pico: join(SHARED, 'fixtures', 'pico', 'pico.safetensors'),
  stories260k: join(SHARED, 'fixtures', 'stories260k', 'stories260K.safetensors'),
} as const;

const weights = {
  pico: readSafetensorsF32(FIXTURES.pico),
  stories260k: readSafetensorsF32(FIXTURES.stories260k),
};

function randomMatrix(m: number, n: number, seed: number): Matrix {
  return { rows: m, cols: n, data: new GaussianRng(seed).fill(new Float32Array(m * n)) };
}

const probe = (() => { const p = probeNative(); return { available: p.lapack !== undefined, detail: p.detail }; })();

for (const which of ['native', 'portable'] as const) {
  const skip = which === 'native' && !probe.available ? `native LAPACK not available here: ${probe.detail}` : false;
  describe(`${which} backend`, { skip }, () => {
    let backend: LinalgBackend;
    const get = async (): Promise<LinalgBackend> => (backend ??= await getLinalgBackend(which));
    after(async () => { await backend?.dispose(); });

    for (const model of ['pico', 'stories260k'] as const) {
      test(`singular values of every 2-D tensor of ${model} match the LAPACK reference to 1e-5 of s_max (auto and direct)`, async () => {
        const b = await get();
        const refs = loadReference(model);
        assert.ok(refs.length >= 18);
        for (const ref of refs) {
          const w = weights[model].get(ref.name);
          assert.ok(w, `tensor ${ref.name} decoded`);
          assert.deepEqual([w.rows, w.cols], ref.shape);
          const smax = ref.singularValues[0]!;
          for (const method of ['auto', 'direct'] as const) {
            const s = await b.singularValues(w, { method });
            assert.equal(s.length, ref.singularValues.length, `${ref.name} count`);
            const err = maxRelDiff(s, ref.singularValues, smax);
            assert.ok(err < 1e-5, `${ref.name} (${method}): max |s - s_ref| / s_max = ${err}`);
          }
        }
      });

      // Every distinct shape (first tensor of each), to keep the suite quick.
      test(`thin SVD identities on each distinct tensor shape of ${model}: U S Vt = W, U^T U = I, V^T V = I (< 1e-5)`, async () => {
        const b = await get();
        const seen = new Set<string>();
        const refs = loadReference(model).filter((r) => { const key = r.shape.join('x'); if (seen.has(key)) return false; seen.add(key); return true; });
        assert.ok(refs.length >= 5);
        for (const ref of refs) {
          const w = weights[model].get(ref.name)!;
          const { U, S, Vt } = await b.svd(w);
          const k = Math.min(w.rows, w.cols);
          assert.deepEqual([U.rows, U.cols, S.length, Vt.rows, Vt.cols], [w.rows, k, k, k, w.cols]);
          const rec = reconstructionError(w, U, S, Vt);
          assert.ok(rec < 1e-5, `${ref.name}: ||W - U S Vt||_F / ||W||_F = ${rec}`);
          assert.ok(orthonormalityError(U) < 1e-5, `${ref.name}: U^T U - I = ${orthonormalityError(U)}`);
          assert.ok(orthonormalityError(Vt, false) < 1e-5, `${ref.name}: Vt Vt^T - I = ${orthonormalityError(Vt, false)}`);
          assert.ok(maxRelDiff(S, ref.singularValues, ref.singularValues[0]!) < 1e-5, `${ref.name}: S of svd()`);
          // Independent check: ||W||_F^2 = sum s_i^2.
          const fro = frobenius(w);
          const fromS = Math.sqrt(S.reduce((acc, x) => acc + x * x, 0));
          assert.ok(Math.abs(fro - fromS) / fro < 1e-6);
        }
      });
    }

    test('gemm matches a float64 reference product for all transpose flags', async () => {
      const b = await get();
      const a = randomMatrix(37, 53, 1), c = randomMatrix(53, 29, 2);
      const at = randomMatrix(53, 37, 3), ct = randomMatrix(29, 53, 4);
      for (const [x, y, tA, tB] of [[a, c, false, false], [at, c, true, false], [a, ct, false, true], [at, ct, true, true]] as const) {
        const got = await b.gemm(x, y, { transA: tA, transB: tB });
        const want = matmul(x, y, tA, tB);
        assert.deepEqual([got.rows, got.cols], [37, 29]);
        assert.ok(maxRelDiff(got.data, want.data, frobenius(want)) < 1e-6);
      }
    });

    test('gram is the float64 Gram of the smaller side', async () => {
      const b = await get();
      for (const [m, n] of [[20, 70], [70, 20]]) {
        const a = randomMatrix(m, n, m);
        const g = await b.gram(a);
        const want = m <= n ? matmul(a, a, false, true) : matmul(a, a, true, false);
        assert.equal(g.rows, Math.min(m, n));
        assert.ok(maxRelDiff(g.data, want.data, frobenius(want)) < 1e-14, 'float64 accumulation');
      }
    });

    test('gram of a matrix with a side >= 1024 (blocked path) matches direct float64 dot products', async () => {
      const b = await get();
      for (const [m, n] of [[1030, 1100], [1100, 1030]]) {
        const a = randomMatrix(m, n, 77);
        const g = await b.gram(a);
        const small = Math.min(m, n), inner = Math.max(m, n);
        const at = (i: number, p: number): number => (m <= n ? a.data[i * n + p]! : a.data[p * n + i]!);
        const rng = new GaussianRng(3);
        for (let t = 0; t < 200; t++) {
          const i = rng.nextUint32() % small, j = rng.nextUint32() % small;
          let want = 0;
          for (let p = 0; p < inner; p++) want += at(i, p) * at(j, p);
          assert.ok(Math.abs(g.data[i * small + j]! - want) <= 1e-12 * inner, `G[${i},${j}]`);
          assert.equal(g.data[i * small + j], g.data[j * small + i]);
        }
      }
    });

    test('symEig: residual ||A X - X diag(l)|| and orthonormal X (< 1e-10 relative)', async () => {
      const b = await get();
      for (const n of [1, 2, 9, 150]) {
        const x = randomMatrix(n, n + 3, n);
        const a = matmul(x, x, false, true);
        a.data[0] = -a.data[0]!; // indefinite
        const { values, vectors } = await b.symEig(a, { vectors: true });
        for (let i = 1; i < n; i++) assert.ok(values[i]! >= values[i - 1]!, 'ascending');
        const X = { rows: n, cols: n, data: vectors! };
        const ax = matmul(a, X);
        let res = 0;
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) res = Math.max(res, Math.abs(ax.data[i * n + j]! - X.data[i * n + j]! * values[j]!));
        const scale = Math.max(Math.abs(values[0]!), Math.abs(values[n - 1]!));
        assert.ok(res / scale < 1e-10, `n=${n}: residual ${res / scale}`);
        assert.ok(orthonormalityError(X) < 1e-10);
        const valuesOnly = await b.symEig(a);
        assert.ok(maxRelDiff(valuesOnly.values, values, scale) < 1e-12);
      }
    });

    test('randomized and Lanczos top-k match a known spectrum (fast and slow decay)', async () => {
      const b = await get();
      const m = 300, n = 200;
      const fast = Array.from({ length: 120 }, (_, i) => 10 * Math.exp(-i / 8));
      const slow = Array.from({ length: 200 }, (_, i) => 1 / Math.sqrt(i + 1));
      for (const [label, s] of [['fast decay', fast], ['slow decay 1/sqrt(i)', slow]] as const) {
        const a = withSpectrum(m, n, s, 11);
        const k = 10;
        const rnd = await b.randomizedSvd(a, k, { oversample: 10, powerIterations: label === 'fast decay' ? 2 : 6, seed: 5 });
        const lan = await b.lanczosSvd(a, k, { tolerance: 1e-7 });
        for (const [name, r, tol] of [['randomized', rnd, label === 'fast decay' ? 1e-5 : 2e-3], ['lanczos', lan, 1e-5]] as const) {
          assert.equal(r.S.length, k);
          const err = maxRelDiff(r.S, s.slice(0, k), s[0]!);
          assert.ok(err < tol, `${name} ${label}: ${err}`);
          assert.ok(orthonormalityError(r.U) < 1e-6, `${name} U`);
          assert.ok(orthonormalityError(r.Vt, false) < 1e-6, `${name} Vt`);
          // A v_i = s_i u_i for the leading triplet.
          const v0 = { rows: n, cols: 1, data: Float64Array.from({ length: n }, (_, j) => r.Vt.data[j]!) };
          const av = matmul(a, v0);
          let res = 0;
          for (let i = 0; i < m; i++) res = Math.max(res, Math.abs(av.data[i]! - r.S[0]! * r.U.data[i * k]!));
          assert.ok(res / s[0]! < 1e-4, `${name} ${label}: leading triplet residual ${res}`);
        }
      }
    });

    test('extreme aspect ratios: 32000 x 8, 1 x n, n x 1', async () => {
      const b = await get();
      const emb = withSpectrum(32000, 8, [5, 4, 3, 2, 1, 0.5, 0.25, 0.125], 3);
      const s = await b.singularValues(emb);
      assert.ok(maxRelDiff(s, [5, 4, 3, 2, 1, 0.5, 0.25, 0.125], 5) < 1e-5);
      const sd = await b.singularValues(emb, { method: 'direct' });
      assert.ok(maxRelDiff(sd, [5, 4, 3, 2, 1, 0.5, 0.25, 0.125], 5) < 1e-5);
      const f = await b.svd(emb);
      assert.ok(reconstructionError(emb, f.U, f.S, f.Vt) < 1e-5);
      assert.ok(orthonormalityError(f.U) < 1e-5);
      const r = await b.randomizedSvd(emb, 4);
      assert.ok(maxRelDiff(r.S, [5, 4, 3, 2], 5) < 1e-5);
      const l = await b.lanczosSvd(emb, 4);
      assert.ok(maxRelDiff(l.S, [5, 4, 3, 2], 5) < 1e-5);
      for (const [m, n] of [[1, 257], [257, 1]]) {
        const v = randomMatrix(m, n, 9);
        const norm = frobenius(v);
        const sv = await b.singularValues(v);
        assert.equal(sv.length, 1);
        assert.ok(Math.abs(sv[0]! - norm) / norm < 1e-6);
        const full = await b.svd(v);
        assert.ok(reconstructionError(v, full.U, full.S, full.Vt) < 1e-6);
        const rr = await b.randomizedSvd(v, 3);
        assert.equal(rr.S.length, 1);
        assert.ok(Math.abs(rr.S[0]! - norm) / norm < 1e-6);
        const ll = await b.lanczosSvd(v, 1);
        assert.ok(Math.abs(ll.S[0]! - norm) / norm < 1e-6);
      }
      const empty = await b.singularValues({ rows: 0, cols: 5, data: new Float32Array(0) });
      assert.equal(empty.length, 0);
    });

    test('cancellation: an aborted signal throws CancelledError, and an abort mid-run stops the sketch', async () => {
      const b = await get();
      const a = randomMatrix(400, 300, 4);
      const aborted = AbortSignal.abort();
      await assert.rejects(b.singularValues(a, { signal: aborted }), CancelledError);
      await assert.rejects(b.svd(a, { signal: aborted }), CancelledError);
      await assert.rejects(b.randomizedSvd(a, 5, { signal: aborted }), CancelledError);
      const ctl = new AbortController();
      let steps = 0;
      const signal = ctl.signal;
      // Abort right after the run starts: the algorithm must notice at its next block boundary.
      const run = b.lanczosSvd(a, 300, { signal, blockSize: 4, tolerance: 0 });
      setImmediate(() => { steps++; ctl.abort(); });
      await assert.rejects(run, CancelledError);
      assert.equal(steps, 1);
    });
  });
}

test('getLinalgBackend: auto picks native when present; an explicit native with a bad path says what was searched', async () => {
  const auto = await getLinalgBackend('auto');
  assert.equal(auto.name, probe.available ? 'native' : 'portable');
  await auto.dispose();
  const bad = '/nonexistent/libno-lapack.so';
  const info = await nativeAvailable({ libraryPath: bad });
  assert.equal(info.available, false);
  assert.match(info.detail, /libno-lapack\.so/);
  await assert.rejects(getLinalgBackend('native', { libraryPath: bad }), (e: Error) => /Native LAPACK unavailable/.test(e.message) && e.message.includes(bad));
  const fallback = await getLinalgBackend('auto', { libraryPath: bad });
  assert.equal(fallback.name, 'portable');
  await fallback.dispose();
});
