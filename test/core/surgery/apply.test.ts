import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { promises as fsp, existsSync } from 'node:fs';
import { open, CancelledError, type Checkpoint } from '../../../src/core/checkpoint';
import { writeNpy } from '../../../src/core/checkpoint/npy';
import type { GgufCheckpoint } from '../../../src/core/checkpoint/gguf';
import { parseFactorizationMetadata, reconstructFactorized, FACTORIZATION_METADATA_KEY } from '../../../src/core/checkpoint/safetensorsWriter';
import { getLinalgBackend, type LinalgBackend } from '../../../src/core/linalg';
import { decomposeMpo, reconstructMpo, mpoParamCount } from '../../../src/core/analysis/mpo';
import { applyRecipe, RECIPE_METADATA_KEY, PROVENANCE_METADATA_KEY, INPUT_SHA256_METADATA_KEY } from '../../../src/core/surgery/apply';
import { residualWriters, directionComponent, injectionVectors } from '../../../src/core/surgery/ablate';
import { PICO, STORIES_GGUF, tempDir, norm, seededVector } from './surgeryTestUtil';

let backendP: Promise<LinalgBackend> | undefined;
const backend = () => (backendP ??= getLinalgBackend());
test.after(async () => { if (backendP) await (await backendP).dispose(); });

async function sha256(file: string): Promise<string> {
  return createHash('sha256').update(await fsp.readFile(file)).digest('hex');
}

async function withOpen<T>(file: string, fn: (c: Checkpoint) => Promise<T>): Promise<T> {
  const c = await open(file);
  try { return await fn(c); } finally { await c.close(); }
}

/** Spectral norm by a direct SVD (the matrices here are small). */
async function spectralNorm(w: Float32Array, rows: number, cols: number): Promise<number> {
  return (await (await backend()).singularValues({ rows, cols, data: w }, { method: 'direct' }))[0];
}

test('ablating a direction leaves every residual writer with ||r^T W|| < 1e-5 ||W|| (read back from the file)', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const rRaw = seededVector(128, 42);
    const dirFile = path.join(dir, 'refusal.npy');
    await writeNpy(dirFile, rRaw, [128]);
    const out = path.join(dir, 'pico_ablated.safetensors');
    const res = await applyRecipe({ version: 1, input: PICO, output: { path: out }, ablate: [{ direction: dirFile }] }, { backend: await backend() });
    const r = Float64Array.from(rRaw).map((x) => x / norm(rRaw));
    const writers = res.residual!.writers;
    assert.equal(writers.length, 18);
    assert.deepEqual(res.tensors.map((t) => t.name).sort(), writers.map((w) => w.name).sort());
    await withOpen(PICO, async (orig) => withOpen(out, async (ab) => {
      for (const w of writers) {
        const t = ab.get(w.name)!;
        const [rows, cols] = t.shape.length === 1 ? [t.shape[0], 1] : t.shape;
        const after = await t.read();
        const before = await orig.get(w.name)!.read();
        const c0 = directionComponent(before, rows, cols, r, w.residualAxis as 0 | 1);
        const c1 = directionComponent(after, rows, cols, r, w.residualAxis as 0 | 1);
        assert.ok(c1 < 1e-5 * norm(after), `${w.name}: ||r^T W|| = ${c1} vs ||W|| = ${norm(after)}`);
        assert.ok(c0 > 1e-3 * norm(before), `${w.name}: the direction had a real component before (${c0})`);
        // The reported error is exactly the removed component: ||W - W'|| = ||r^T W||.
        const rep = res.tensors.find((x) => x.name === w.name)!;
        assert.ok(Math.abs(rep.relativeError - c0 / norm(before)) < 1e-5, w.name);
      }
      // Everything else is copied byte for byte.
      for (const t of orig.tensors) {
        if (writers.some((w) => w.name === t.name)) continue;
        assert.deepEqual(await ab.get(t.name)!.readRaw(), await t.readRaw(), t.name);
      }
      assert.equal(ab.metadata.arch, 'gpt2-char', 'the input __metadata__ is kept');
    }));
  } finally { await cleanup(); }
});

test('ablating a direction from the stories260K GGUF keeps its KV and writes the provenance KV', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const dirFile = path.join(dir, 'r.npy');
    await writeNpy(dirFile, seededVector(64, 7), [1, 64]);
    const out = path.join(dir, 'stories_ablated.gguf');
    const res = await applyRecipe({ version: 1, input: STORIES_GGUF, output: { path: out }, ablate: [{ direction: dirFile }] }, { backend: await backend() });
    assert.equal(res.tensors.length, 11);
    const r = (await import('../../../src/core/surgery/ablate')).normalise(seededVector(64, 7));
    await withOpen(out, async (c) => {
      const g = c as GgufCheckpoint;
      assert.equal((g.gguf.kv.get('tokenizer.ggml.tokens')!.value as unknown[]).length, 512);
      assert.equal(g.gguf.kv.get(INPUT_SHA256_METADATA_KEY)!.value, '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d');
      const rec = JSON.parse(g.gguf.kv.get(RECIPE_METADATA_KEY)!.value as string);
      assert.equal(rec.ablate[0].direction, dirFile);
      for (const w of residualWriters(c).writers) {
        const t = c.get(w.name)!;
        const v = await t.read();
        assert.ok(directionComponent(v, t.shape[0], t.shape[1], r, w.residualAxis) < 1e-5 * norm(v), w.name);
      }
    });
  } finally { await cleanup(); }
});

test('virus: inject s = 100 into a PicoGPT MLP matrix, remove the top-1 direction, recover W within the perturbation bound', async () => {
  /*
   * W' = W + A, A = s u v^T (unit u, v), W'' = W' - s1' u1' v1'^T (the top triplet of W' removed).
   * Since s1' u1' v1'^T = u1' u1'^T W', W'' = Q W' with Q = I - u1' u1'^T, so
   *   W'' - W = Q A - u1' u1'^T W   and   ||W'' - W||_2 <= s ||Q u|| + ||W^T u1'|| = s sin(theta_u) + ||W^T u1'||.
   * Wedin's sin-theta theorem (Stewart & Sun, Matrix Perturbation Theory, Thm V.4.4), with A the
   * unperturbed matrix (its complementary singular values are 0) and W' = A + W the perturbed one:
   * residuals R = A v1' - s1' u1' = -W v1', S = A^T u1' - s1' v1' = -W^T u1', gap delta = s1' - 0, so
   *   sin(theta_u) <= sqrt(||W v1'||^2 + ||W^T u1'||^2) / s1'.
   * Hence the data-dependent bound
   *   B1 = s sqrt(||W v1'||^2 + ||W^T u1'||^2) / s1' + ||W^T u1'||,
   * and, with ||W v1'||, ||W^T u1'|| <= s_1(W) and s1' >= s - s_1(W) (Weyl), the a-priori bound
   *   B2 = s_1(W) (1 + sqrt(2) s / (s - s_1(W)))  (for s > s_1(W)).
   * Independently, Weyl gives s_2(W') <= s_2(A) + s_1(W) = s_1(W), so ||W''||_2 <= s_1(W) and
   *   ||W'' - W||_2 <= ||W''||_2 + ||W||_2 <= 2 s_1(W) = B3, for any s.
   * The test checks ||W'' - W||_2 <= B1 <= B2 and ||W'' - W||_2 <= B3 (plus float32 slack 1e-5 s).
   */
  const { dir, cleanup } = await tempDir();
  try {
    const name = 'h.1.mlp.c_fc.weight';
    const s = 100;
    const infected = path.join(dir, 'infected.safetensors');
    const restored = path.join(dir, 'restored.safetensors');
    const inj = await applyRecipe({ version: 1, input: PICO, output: { path: infected }, inject: [{ tensor: name, strength: s, seed: 5 }] }, { backend: await backend() });
    assert.deepEqual(inj.tensors.map((t) => t.name), [name]);
    const rem = await applyRecipe({ version: 1, input: infected, output: { path: restored }, ablate: [{ removeTop: 1, tensors: name }] }, { backend: await backend() });
    const [W, W1, W2, shape] = await withOpen(PICO, async (a) => withOpen(infected, async (b) => withOpen(restored, async (c) =>
      [await a.get(name)!.read(), await b.get(name)!.read(), await c.get(name)!.read(), a.get(name)!.shape] as const)));
    const [rows, cols] = shape;
    const s1W = await spectralNorm(W, rows, cols);
    assert.ok(s > 10 * s1W, `s = ${s} must dominate s_1(W) = ${s1W}`);
    // The injected matrix is W + s u v^T with the seeded vectors.
    const { u, v } = injectionVectors(rows, cols, { seed: 5 });
    let maxDiff = 0;
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) maxDiff = Math.max(maxDiff, Math.abs(W1[i * cols + j] - W[i * cols + j] - s * u[i] * v[j]));
    assert.ok(maxDiff < 1e-4, `infected = W + s u v^T (max deviation ${maxDiff})`);

    const svd = await (await backend()).svd({ rows, cols, data: W1 });
    const s1p = svd.S[0];
    assert.ok(Math.abs(rem.tensors[0].removedSingularValues![0] - s1p) < 1e-4 * s1p, 'the removed value is s_1(W\')');
    const u1 = Float64Array.from({ length: rows }, (_, i) => svd.U.data[i * svd.U.cols]);
    const v1 = Float64Array.from({ length: cols }, (_, j) => svd.Vt.data[j]);
    const Wv = new Float64Array(rows), WTu = new Float64Array(cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) { Wv[i] += W[i * cols + j] * v1[j]; WTu[j] += W[i * cols + j] * u1[i]; }
    const D = new Float32Array(W.length);
    for (let i = 0; i < W.length; i++) D[i] = W2[i] - W[i];
    const observed = await spectralNorm(D, rows, cols);
    const B1 = s * Math.hypot(norm(Wv), norm(WTu)) / s1p + norm(WTu);
    const B2 = s1W * (1 + Math.SQRT2 * s / (s - s1W));
    const B3 = 2 * s1W;
    const slack = 1e-5 * s;
    console.log(`virus s=${s}: s_1(W)=${s1W.toFixed(4)}, s_1(W')=${s1p.toFixed(4)}, ||W''-W||_2=${observed.toFixed(4)}, ` +
      `bounds: Wedin data-dependent B1=${B1.toFixed(4)}, a-priori B2=${B2.toFixed(4)}, Weyl B3=${B3.toFixed(4)}; ` +
      `relative Frobenius error ${rem.tensors[0].relativeError.toExponential(3)} vs infected, ||W''-W||_F/||W||_F=${(norm(D) / norm(W)).toFixed(4)}`);
    assert.ok(observed <= B1 + slack, `observed ${observed} > B1 ${B1}`);
    assert.ok(B1 <= B2 + slack, `B1 ${B1} > B2 ${B2}`);
    assert.ok(observed <= B3 + slack, `observed ${observed} > B3 ${B3}`);
    // The scalpel really restores: far closer to W than the infected matrix was (s = 100 away).
    assert.ok(observed < s / 10);
  } finally { await cleanup(); }
});

test('compress --method mpo at chi = 4, 8, 16, 32 on PicoGPT: totals, errors, dense = the MPO reconstruction, factorized = the same', async () => {
  const { dir, cleanup } = await tempDir();
  const be = await backend();
  try {
    const rows: string[] = ['chi  params     dense      ratio   x fewer  mean rel.err  max rel.err'];
    let prevErr = Infinity;
    for (const chi of [4, 8, 16, 32]) {
      const dense = path.join(dir, `pico_mpo${chi}.safetensors`);
      const fact = path.join(dir, `pico_mpo${chi}_f.safetensors`);
      const res = await applyRecipe({ version: 1, input: PICO, output: { path: dense }, compress: [{ method: 'mpo', chi }] }, { backend: be });
      const resF = await applyRecipe({ version: 1, input: PICO, output: { path: fact, factorized: true }, compress: [{ method: 'mpo', chi }] }, { backend: be });
      assert.equal(res.tensors.length, 16, 'the attention and MLP matrices of the 4 blocks');
      assert.deepEqual(resF.totals.totalParams, res.totals.totalParams);
      const compressedParams = res.tensors.reduce((a, t) => a + t.params, 0);
      const denseParams = res.tensors.reduce((a, t) => a + t.denseParams, 0);
      assert.equal(res.totals.originalParams, 818048);
      assert.equal(res.totals.totalParams, 818048 - denseParams + compressedParams);
      await withOpen(PICO, async (orig) => withOpen(dense, async (d) => withOpen(fact, async (f) => {
        const factorization = parseFactorizationMetadata(f.metadata, fact);
        assert.equal(factorization.size, 16);
        for (const rep of res.tensors) {
          const t = orig.get(rep.name)!;
          const [m, n] = t.shape;
          const w = await t.read();
          // An independent decomposition with the same site plan: the file must hold its reconstruction.
          const mpo = await decomposeMpo(w, m, n, { backend: be, truncation: { chi }, sites: 2, spectra: 'sweep' });
          assert.deepEqual(rep.bondDimensions, mpo.bondDimensions);
          assert.equal(rep.params, mpoParamCount(mpo.outFactors, mpo.inFactors, mpo.bondDimensions));
          const expected = await reconstructMpo(mpo, be);
          const got = await d.get(rep.name)!.read();
          let num = 0;
          for (let i = 0; i < got.length; i++) num += (got[i] - expected[i]) ** 2;
          assert.ok(Math.sqrt(num) <= 1e-5 * norm(expected), `${rep.name}: dense file vs reconstruction ${Math.sqrt(num)}`);
          // Reported relative error = ||W - W_mpo|| / ||W|| measured on the file.
          let e = 0;
          for (let i = 0; i < got.length; i++) e += (got[i] - w[i]) ** 2;
          assert.ok(Math.abs(Math.sqrt(e) / norm(w) - rep.relativeError) < 1e-4, `${rep.name}: reported ${rep.relativeError}, measured ${Math.sqrt(e) / norm(w)}`);
          // The factorized file contracts back to the same matrix.
          const fz = factorization.get(rep.name)!;
          const back = await reconstructFactorized(fz, async (nm) => f.get(nm)!.read());
          let fd = 0;
          for (let i = 0; i < got.length; i++) fd += (back[i] - got[i]) ** 2;
          assert.ok(Math.sqrt(fd) <= 1e-5 * norm(got), `${rep.name}: factorized vs dense`);
          assert.equal(f.get(rep.name), undefined, 'the dense tensor is not in the factorized file');
        }
        // Untouched tensors are byte-identical.
        assert.deepEqual(await d.get('wte.weight')!.readRaw(), await orig.get('wte.weight')!.readRaw());
      })));
      const errs = res.tensors.map((t) => t.relativeError);
      const mean = errs.reduce((a, b) => a + b, 0) / errs.length;
      assert.ok(mean < prevErr, 'a larger chi must lose less');
      prevErr = mean;
      rows.push(`${String(chi).padStart(3)}  ${String(compressedParams).padStart(6)}  ${String(denseParams).padStart(8)}  ${(compressedParams / denseParams).toFixed(4)}  ${(denseParams / compressedParams).toFixed(2).padStart(7)}  ${mean.toFixed(4).padStart(12)}  ${Math.max(...errs).toFixed(4).padStart(11)}`);
    }
    console.log(`PicoGPT attention + MLP matrices as 2-site MPOs:\n${rows.join('\n')}`);
  } finally { await cleanup(); }
});

test('every output records the input sha256 in its metadata and in the sidecar recipe', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const out = path.join(dir, 'svd.safetensors');
    const res = await applyRecipe({ version: 1, input: PICO, output: { path: out }, compress: [{ method: 'svd', rank: 16, tensors: 'h.0.*' }] }, { backend: await backend() });
    const expected = await sha256(PICO);
    assert.equal(res.provenance.input.sha256, expected);
    await withOpen(out, async (c) => {
      assert.equal(c.metadata[INPUT_SHA256_METADATA_KEY], expected);
      const prov = JSON.parse(c.metadata[PROVENANCE_METADATA_KEY] as string);
      assert.equal(prov.input.files[0].sha256, expected);
      assert.equal(prov.input.files[0].size, (await fsp.stat(PICO)).size);
      assert.equal(prov.input.name, 'pico.safetensors');
      assert.equal(JSON.parse(c.metadata[RECIPE_METADATA_KEY] as string).compress[0].rank, 16);
    });
    assert.equal(res.sidecar, `${out}.recipe.json`);
    const side = JSON.parse(await fsp.readFile(res.sidecar!, 'utf8'));
    assert.equal(side.provenance.input.sha256, expected);
    assert.equal(side.recipe.compress[0].method, 'svd');
    assert.equal(side.results.totals.totalParams, res.totals.totalParams);
    assert.equal(res.tensors.length, 4, 'h.0.* matches four matrices (biases and norms are skipped)');
    for (const t of res.tensors) assert.equal(t.params, 16 * (t.denseParams / 128 + 128));
  } finally { await cleanup(); }
});

test('a global svd budget through apply: meets the ratio and the file holds the chosen ranks', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const out = path.join(dir, 'budget.safetensors');
    const res = await applyRecipe({ version: 1, input: PICO, output: { path: out, factorized: true }, budget: { method: 'svd', ratio: 0.25 } }, { backend: await backend() });
    const budgeted = res.budget!;
    assert.ok(budgeted.totalParams <= Math.floor(0.25 * budgeted.denseParams));
    await withOpen(out, async (c) => {
      const fz = parseFactorizationMetadata(c.metadata, out);
      for (const ch of budgeted.choices.filter((x) => x.compressed)) {
        const f = fz.get(ch.name)!;
        assert.equal(f.kind, 'lowrank');
        assert.equal((f as { rank: number }).rank, ch.rank);
        assert.deepEqual(c.get(`${ch.name}.lowrank.a`)!.shape, [c.get(`${ch.name}.lowrank.a`)!.shape[0], ch.rank]);
      }
    });
  } finally { await cleanup(); }
});

test('error-targeted factorized output, GGUF output with Q8_0, cancellation leaves nothing behind', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const out = path.join(dir, 'err.safetensors');
    const res = await applyRecipe({ version: 1, input: PICO, output: { path: out, factorized: true }, compress: [{ method: 'mpo', error: 0.3, tensors: 'h.*.mlp.*.weight' }, { method: 'svd', error: 0.3, tensors: 'h.*.attn.*.weight' }] }, { backend: await backend() });
    for (const t of res.tensors) assert.ok(t.relativeError <= 0.3 + 1e-6, `${t.name}: ${t.relativeError}`);

    const gg = path.join(dir, 'stories_q8.gguf');
    const g = await applyRecipe({ version: 1, input: STORIES_GGUF, output: { path: gg, dtype: 'Q8_0' }, compress: [{ method: 'svd', rank: 16, tensors: 'blk.*.attn_q.weight' }] }, { backend: await backend() });
    assert.ok(g.warnings.some((w) => /ffn_down.*F16/.test(w)), 'ffn_down rows of 172 fall back to F16');
    await withOpen(gg, async (c) => {
      assert.equal(c.get('blk.0.attn_q.weight')!.dtype, 'Q8_0');
      assert.equal(c.get('blk.0.attn_norm.weight')!.dtype, 'F32', '1-D tensors stay as they are');
    });

    const ac = new AbortController();
    const cancelled = path.join(dir, 'cancelled.safetensors');
    await assert.rejects(applyRecipe({ version: 1, input: PICO, output: { path: cancelled }, compress: [{ method: 'mpo', chi: 8 }] }, {
      backend: await backend(), signal: ac.signal, onProgress: (p) => { if (p.phase === 'write' && p.index === 3) ac.abort(); },
    }), CancelledError);
    assert.deepEqual((await fsp.readdir(dir)).filter((f) => f.includes('cancelled')), []);
    assert.ok(!existsSync(`${cancelled}.recipe.json`));
  } finally { await cleanup(); }
});

test('sharded safetensors output and factorized GGUF output read back to the decomposition', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const be = await backend();
    const sharded = path.join(dir, 'sharded.safetensors');
    const rs = await applyRecipe({ version: 1, input: PICO, output: { path: sharded, maxShardBytes: 1 << 20 }, compress: [{ method: 'svd', rank: 8 }] }, { backend: be });
    const index = path.join(dir, 'sharded.safetensors.index.json');
    assert.equal(rs.totals.out, index);
    assert.equal(rs.sidecar, `${index}.recipe.json`);
    assert.ok(rs.files.filter((f) => /sharded-\d{5}-of-\d{5}\.safetensors$/.test(f)).length >= 2);
    await withOpen(index, async (c) => {
      assert.equal(c.tensors.length, 52);
      assert.equal(c.metadata[INPUT_SHA256_METADATA_KEY], rs.provenance.input.sha256);
    });

    const gg = path.join(dir, 'stories_mpo.gguf');
    const rg = await applyRecipe({ version: 1, input: STORIES_GGUF, output: { path: gg, factorized: true }, compress: [{ method: 'mpo', chi: 8, tensors: 'blk.*.attn_q.weight' }] }, { backend: be });
    assert.equal(rg.tensors.length, 5);
    await withOpen(STORIES_GGUF, async (orig) => withOpen(gg, async (c) => {
      const fz = parseFactorizationMetadata({ [FACTORIZATION_METADATA_KEY]: (c as GgufCheckpoint).gguf.kv.get(FACTORIZATION_METADATA_KEY)!.value }, gg);
      assert.equal(fz.size, 5);
      for (const rep of rg.tensors) {
        const w = await orig.get(rep.name)!.read();
        const back = await reconstructFactorized(fz.get(rep.name)!, async (nm) => c.get(nm)!.read());
        let e = 0;
        for (let i = 0; i < w.length; i++) e += (back[i] - w[i]) ** 2;
        assert.ok(Math.abs(Math.sqrt(e) / norm(w) - rep.relativeError) < 1e-4, `${rep.name}: file error ${Math.sqrt(e) / norm(w)} vs reported ${rep.relativeError}`);
      }
      assert.equal(c.get('blk.0.attn_q.weight'), undefined);
      assert.ok(c.get('blk.0.attn_q.weight.mpo.core.2'));
    }));
  } finally { await cleanup(); }
});
