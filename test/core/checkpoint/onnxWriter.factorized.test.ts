/**
 * ONNX writer, factorized replacements: low-rank (a @ b) and MPO cores wired into the graph.
 * Full rank / full bond dimension must reproduce the original model's logits (pico.onnx, within
 * 1e-3); truncated factorizations must make each rewritten layer compute exactly x @ W_approx, where
 * W_approx is the dense reconstruction (a @ b, or reconstructMpo of the cores) — checked on small
 * graphs with MatMul (incl. zero padding of the MPO sides) and Gemm (transA / transB, alpha, beta, C).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fsp, readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { writeOnnx, mpoContractionMacs, type OnnxReplacement, type MpoReplacement } from '../../../src/core/checkpoint/onnxWriter';
import { openOnnx } from '../../../src/core/checkpoint/onnx';
import { decodeModel, encodeModel, float32Tensor, OnnxDataType, type INodeProto } from '../../../src/core/checkpoint/onnxProto';
import { parseFactorizationMetadata, reconstructFactorized } from '../../../src/core/checkpoint/safetensorsWriter';
import { getLinalgBackend, type LinalgBackend } from '../../../src/core/linalg';
import { lowRankFactors } from '../../../src/core/analysis/lowrank';
import { decomposeMpo, reconstructMpo, type MpoDecomposition } from '../../../src/core/analysis/mpo';
import { PICO, STORIES, tempDir, runModel, tokenIds, maxAbsDiff, onnxChecker, matmul64, pseudoRandom } from './onnxWriterTestUtil';

let backend: LinalgBackend;
let dir: string;
before(async () => { backend = await getLinalgBackend('auto', { threads: 1 }); dir = await tempDir('fact'); });
after(async () => { await fsp.rm(dir, { recursive: true, force: true }); });

async function picoWeights(filter: (name: string) => boolean): Promise<Map<string, { shape: [number, number]; data: Float32Array }>> {
  const c = await openOnnx(PICO);
  try {
    const out = new Map<string, { shape: [number, number]; data: Float32Array }>();
    for (const t of c.tensors) if (filter(t.name)) out.set(t.name, { shape: t.shape as [number, number], data: await t.read() });
    return out;
  } finally { await c.close(); }
}

function mpoReplacement(m: MpoDecomposition): MpoReplacement {
  return { kind: 'mpo', cores: m.cores.map((c) => c.data), coreShapes: m.cores.map((c) => c.shape), outFactors: m.outFactors, inFactors: m.inFactors };
}

function countOps(file: string): Record<string, number> {
  const m = decodeModel(readFileSync(file));
  const h: Record<string, number> = {};
  for (const n of m.graph!.node!) h[n.op_type!] = (h[n.op_type!] ?? 0) + 1;
  return h;
}

function check(t: { skip: (m: string) => void }, file: string): void {
  const r = onnxChecker(file);
  if (r?.startsWith('skip:')) { t.skip(r); return; }
  assert.equal(r, undefined, `onnx.checker: ${r}`);
}

/** max |a - b| / max |b|. */
function relMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  return maxAbsDiff(a, b) / scale;
}

test('pico.onnx low-rank at full rank: every MatMul weight factorized, logits within 1e-3, checker passes', async (t) => {
  const weights = await picoWeights((n) => n.startsWith('onnx::MatMul_'));
  assert.equal(weights.size, 17);
  const replacements = new Map<string, OnnxReplacement>();
  let factorParams = 0, denseParams = 0;
  for (const [name, w] of weights) {
    const [m, n] = w.shape;
    const k = Math.min(m, n);
    const f = await lowRankFactors({ rows: m, cols: n, data: w.data }, k, backend);
    replacements.set(name, { kind: 'lowrank', a: f.A.data, b: f.B.data });
    factorParams += k * (m + n);
    denseParams += m * n;
  }
  const out = path.join(dir, 'pico_lowrank_full.onnx');
  const res = await writeOnnx(PICO, out, { replacements, metadata: { 'tensor_scalpel.recipe': 'lowrank full' } });
  assert.equal(res.replacements.length, 17);
  for (const r of res.replacements) {
    assert.equal(r.keptOriginal, false, r.name);
    assert.deepEqual(r.consumers.map((c) => [c.opType, c.inputIndex, c.rewritten]), [['MatMul', 1, true]]);
    assert.deepEqual(r.tensors, [`${r.name}.lowrank.a`, `${r.name}.lowrank.b`]);
  }
  // Parameters: the 17 dense matrices leave, their factors arrive.
  assert.equal(res.parameters.after - res.parameters.before, factorParams - denseParams);
  assert.equal(res.replacements.reduce((s, r) => s + r.factorParams, 0), factorParams);
  const ops = countOps(out);
  assert.equal(ops.MatMul, 25 + 17, 'each factorized MatMul became two');
  assert.equal(res.nodes.after, res.nodes.before + 17);

  const ids = { input_ids: tokenIds(64, 65) };
  const l0 = await runModel(PICO, ids, 'logits');
  const l1 = await runModel(out, ids, 'logits');
  const d = maxAbsDiff(l0.data, l1.data);
  assert.ok(d < 1e-3, `full-rank logits differ by ${d}`);
  check(t, out);

  // The factorization metadata describes the factors the way the safetensors writer does, and
  // contracting the stored factors gives back the original weight.
  const c = await openOnnx(out);
  try {
    const meta = parseFactorizationMetadata((c.metadata as { metadataProps: Record<string, string> }).metadataProps, out);
    assert.equal(meta.size, 17);
    const f = meta.get('onnx::MatMul_606')!;
    const w = await reconstructFactorized(f, async (n) => c.get(n)!.read());
    const ref = weights.get('onnx::MatMul_606')!.data;
    assert.ok(relMax(w, ref) < 1e-5);
    assert.equal(c.get('onnx::MatMul_606'), undefined, 'the dense original is gone');
  } finally { await c.close(); }
});

test('pico.onnx low-rank truncated (rank 16): runs, and differs from the original as a compression should', async () => {
  const weights = await picoWeights((n) => n.startsWith('onnx::MatMul_'));
  const replacements = new Map<string, OnnxReplacement>();
  for (const [name, w] of weights) {
    const f = await lowRankFactors({ rows: w.shape[0], cols: w.shape[1], data: w.data }, 16, backend);
    replacements.set(name, { kind: 'lowrank', a: f.A.data, b: f.B.data });
  }
  const out = path.join(dir, 'pico_lowrank16.onnx');
  const res = await writeOnnx(PICO, out, { replacements });
  assert.ok(res.parameters.after < res.parameters.before);
  const ids = { input_ids: tokenIds(32, 65) };
  const l1 = await runModel(out, ids, 'logits');
  assert.ok(l1.data.every(Number.isFinite));
  assert.ok(maxAbsDiff((await runModel(PICO, ids, 'logits')).data, l1.data) > 1e-3);
});

test('a weight consumed by a non-MatMul node (wte.weight, Gather) keeps its original; the report says so', async () => {
  const [[name, w]] = [...(await picoWeights((n) => n === 'wte.weight'))];
  const f = await lowRankFactors({ rows: 65, cols: 128, data: w.data }, 8, backend);
  const out = path.join(dir, 'pico_wte.onnx');
  const res = await writeOnnx(PICO, out, { replacements: { [name]: { kind: 'lowrank', a: f.A.data, b: f.B.data } } });
  const r = res.replacements[0];
  assert.equal(r.keptOriginal, true);
  assert.deepEqual(r.consumers.map((c) => [c.opType, c.rewritten]), [['Gather', false]]);
  assert.match(r.consumers[0].reason!, /Gather is not MatMul or Gemm/);
  const ids = { input_ids: tokenIds(16, 65) };
  assert.equal(maxAbsDiff((await runModel(PICO, ids, 'logits')).data, (await runModel(out, ids, 'logits')).data), 0);
  // No consumer computes with the factors, so none are written (no unused initializers).
  assert.deepEqual(r.tensors, ['wte.weight']);
  assert.equal(res.parameters.after, res.parameters.before);
  const c = await openOnnx(out);
  assert.ok(c.get('wte.weight') && !c.get('wte.weight.lowrank.a'));
  await c.close();
});

test('pico.onnx MPO at full bond dimension: logits within 1e-3; truncated: runs', async (t) => {
  const [[name, w]] = [...(await picoWeights((n) => n === 'onnx::MatMul_606'))]; // h.0.mlp.c_fc, [128, 512]
  const full = await decomposeMpo(w.data, 128, 512, { backend, outFactors: [8, 16], inFactors: [16, 32], spectra: 'sweep' });
  assert.ok(full.relativeError < 1e-5);
  const out = path.join(dir, 'pico_mpo_full.onnx');
  const res = await writeOnnx(PICO, out, { replacements: { [name]: mpoReplacement(full) } });
  assert.equal(res.replacements[0].keptOriginal, false);
  assert.deepEqual(res.replacements[0].tensors, [`${name}.mpo.core.1`, `${name}.mpo.core.2`]);
  const ids = { input_ids: tokenIds(48, 65) };
  const l0 = await runModel(PICO, ids, 'logits');
  const d = maxAbsDiff(l0.data, (await runModel(out, ids, 'logits')).data);
  assert.ok(d < 1e-3, `full-bond MPO logits differ by ${d}`);
  check(t, out);

  const trunc = await decomposeMpo(w.data, 128, 512, { backend, outFactors: [4, 4, 8], inFactors: [8, 8, 8], truncation: { chi: 8 }, spectra: 'sweep' });
  assert.ok(trunc.params < 128 * 512 / 4);
  const out2 = path.join(dir, 'pico_mpo_chi8.onnx');
  const res2 = await writeOnnx(PICO, out2, { replacements: { [name]: mpoReplacement(trunc) } });
  assert.equal(res2.parameters.before - res2.parameters.after > 128 * 512 / 2, true);
  const l2 = await runModel(out2, ids, 'logits');
  assert.ok(l2.data.every(Number.isFinite));
  assert.ok(maxAbsDiff(l0.data, l2.data) > 1e-4);
  check(t, out2);
});

/** A model y = x @ W (MatMul) and y2 = W2 @ x2 for the per-layer checks. */
function matmulModel(w: Float32Array, rows: number, cols: number, xShape: number[]): Uint8Array {
  const f = OnnxDataType.FLOAT;
  const vi = (name: string, dims: number[]) => ({ name, type: { tensor_type: { elem_type: f, shape: { dim: dims.map((d) => ({ dim_value: d })) } } } });
  return encodeModel({
    ir_version: 8, opset_import: [{ domain: '', version: 14 }], producer_name: 'onnxWriter test',
    graph: {
      name: 'layer',
      node: [
        { name: 'mm', op_type: 'MatMul', input: ['x', 'W'], output: ['y'] },
        { name: 'mm_left', op_type: 'MatMul', input: ['W', 'x2'], output: ['y2'] },
      ],
      initializer: [float32Tensor('W', [rows, cols], w)],
      input: [vi('x', xShape), vi('x2', [cols, 3])],
      output: [vi('y', [...xShape.slice(0, -1), cols]), vi('y2', [rows, 3])],
    },
  });
}

test('per layer: truncated MPO (2 and 3 sites, zero padding) and low-rank compute exactly x @ W_approx', async (t) => {
  const weights = await picoWeights((n) => n === 'onnx::MatMul_606' || n === 'onnx::MatMul_641');
  const cases: Array<{ name: string; opts: Parameters<typeof decomposeMpo>[3] }> = [
    { name: 'onnx::MatMul_606', opts: { backend, outFactors: [8, 16], inFactors: [16, 32], truncation: { chi: 12 } } },
    { name: 'onnx::MatMul_606', opts: { backend, outFactors: [4, 4, 8], inFactors: [8, 8, 8], truncation: { chi: 6 } } },
    // lm_head [128, 65]: 65 columns padded to 8 x 9 = 72.
    { name: 'onnx::MatMul_641', opts: { backend, outFactors: [8, 16], inFactors: [8, 9], siteOptions: { allowPadding: true }, truncation: { chi: 5 } } },
  ];
  for (const [ci, c] of cases.entries()) {
    const w = weights.get(c.name)!;
    const [rows, cols] = w.shape;
    const xShape = [2, 5, rows];
    const src = path.join(dir, `layer${ci}.onnx`);
    await fsp.writeFile(src, matmulModel(w.data, rows, cols, xShape));
    const x = pseudoRandom(2 * 5 * rows, 11 + ci);
    const x2 = pseudoRandom(cols * 3, 17 + ci);
    const feeds = { x: new ort.Tensor('float32', x, xShape), x2: new ort.Tensor('float32', x2, [cols, 3]) };

    const mpo = await decomposeMpo(w.data, rows, cols, { ...c.opts, spectra: 'sweep' });
    assert.ok(mpo.relativeError > 1e-3, 'really truncated');
    const wMpo = await reconstructMpo(mpo, backend);
    const ref = matmul64(x, wMpo, 10, rows, cols);
    // And the truncated MPO is not just the dense weight.
    assert.ok(relMax(matmul64(x, w.data, 10, rows, cols), ref) > 1e-4);
    for (const order of ['left-to-right', 'right-to-left'] as const) {
      const out = path.join(dir, `layer${ci}_mpo_${order}.onnx`);
      const res = await writeOnnx(src, out, { replacements: { W: { ...mpoReplacement(mpo), order } } });
      // MatMul(W, x2) has W on the left: an MPO rewrite does not cover it, so the original stays for it.
      assert.deepEqual(res.replacements[0].consumers.map((r) => r.rewritten), [true, false]);
      assert.equal(res.replacements[0].keptOriginal, true);
      assert.equal(res.replacements[0].macsPerRow, mpoContractionMacs(mpo.outFactors, mpo.inFactors, mpo.bondDimensions, 'rows', order));
      const y = await runModel(out, feeds, 'y');
      assert.deepEqual(y.dims, [2, 5, cols]);
      const e = relMax(y.data, ref);
      assert.ok(e < 1e-5, `case ${ci} ${order}: MPO layer output vs x @ W_mpo: ${e}`);
      if (order === 'left-to-right') check(t, out);
    }

    const k = 7;
    const f = await lowRankFactors({ rows, cols, data: w.data }, k, backend);
    const wLow = matmul64(f.A.data, f.B.data, rows, k, cols);
    const outL = path.join(dir, `layer${ci}_lowrank.onnx`);
    const resL = await writeOnnx(src, outL, { replacements: { W: { kind: 'lowrank', a: f.A.data, b: f.B.data } } });
    assert.deepEqual(resL.replacements[0].consumers.map((r) => r.rewritten), [true, true]);
    assert.equal(resL.replacements[0].keptOriginal, false);
    const yl = await runModel(outL, feeds, 'y');
    assert.ok(relMax(yl.data, matmul64(x, wLow, 10, rows, cols)) < 1e-5);
    const y2 = await runModel(outL, feeds, 'y2');
    assert.ok(relMax(y2.data, matmul64(wLow, x2, rows, cols, 3)) < 1e-5, 'W @ x2 = a @ (b @ x2)');
  }
});

/** Two Gemm nodes: Y1 = 0.5 A1 @ W1 + 2 C1 (transB = 0); Y2 = A2^T @ W2^T (transA = transB = 1, no C). */
function gemmModel(w1: Float32Array, w2: Float32Array, c1: Float32Array): Uint8Array {
  const f = OnnxDataType.FLOAT;
  const vi = (name: string, dims: number[]) => ({ name, type: { tensor_type: { elem_type: f, shape: { dim: dims.map((d) => ({ dim_value: d })) } } } });
  const nodes: INodeProto[] = [
    { name: 'g1', op_type: 'Gemm', input: ['A1', 'W1', 'C1'], output: ['Y1'], attribute: [{ name: 'alpha', type: 1, f: 0.5 }, { name: 'beta', type: 1, f: 2 }] },
    { name: 'g2', op_type: 'Gemm', input: ['A2', 'W2'], output: ['Y2'], attribute: [{ name: 'transA', type: 2, i: 1 }, { name: 'transB', type: 2, i: 1 }] },
  ];
  return encodeModel({
    ir_version: 8, opset_import: [{ domain: '', version: 13 }],
    graph: {
      name: 'gemm', node: nodes,
      initializer: [float32Tensor('W1', [128, 96], w1), float32Tensor('W2', [96, 128], w2), float32Tensor('C1', [96], c1)],
      input: [vi('A1', [4, 128]), vi('A2', [128, 4])],
      output: [vi('Y1', [4, 96]), vi('Y2', [4, 96])],
    },
  });
}

test('Gemm (transB = 0 with alpha, beta, C; transA = transB = 1): low-rank and MPO rewrites equal the reconstruction', async (t) => {
  const w1 = pseudoRandom(128 * 96, 1), w2 = pseudoRandom(96 * 128, 2), c1 = pseudoRandom(96, 3);
  const src = path.join(dir, 'gemm.onnx');
  await fsp.writeFile(src, gemmModel(w1, w2, c1));
  const a1 = pseudoRandom(4 * 128, 4), a2 = pseudoRandom(128 * 4, 5);
  const feeds = { A1: new ort.Tensor('float32', a1, [4, 128]), A2: new ort.Tensor('float32', a2, [128, 4]) };
  const a2T = new Float32Array(4 * 128);
  for (let i = 0; i < 128; i++) for (let j = 0; j < 4; j++) a2T[j * 128 + i] = a2[i * 4 + j];
  const transpose = (w: ArrayLike<number>, m: number, n: number) => { const o = new Float64Array(m * n); for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) o[j * m + i] = w[i * n + j]; return o; };
  const expected = (W1: ArrayLike<number>, W2: ArrayLike<number>) => {
    const y1 = matmul64(a1, W1, 4, 128, 96).map((v, i) => 0.5 * v + 2 * c1[i % 96]);
    const y2 = matmul64(a2T, transpose(W2, 96, 128), 4, 128, 96);
    return { y1, y2 };
  };
  const y0 = await runModel(src, feeds, 'Y1');
  assert.ok(relMax(y0.data, expected(w1, w2).y1) < 1e-5, 'the reference formula matches onnxruntime on the original');

  // Low-rank, truncated (rank 10 of 96).
  const f1 = await lowRankFactors({ rows: 128, cols: 96, data: w1 }, 10, backend);
  const f2 = await lowRankFactors({ rows: 96, cols: 128, data: w2 }, 10, backend);
  const outL = path.join(dir, 'gemm_lowrank.onnx');
  const resL = await writeOnnx(src, outL, { replacements: { W1: { kind: 'lowrank', a: f1.A.data, b: f1.B.data }, W2: { kind: 'lowrank', a: f2.A.data, b: f2.B.data } } });
  assert.ok(resL.replacements.every((r) => !r.keptOriginal && r.consumers.every((c) => c.rewritten)));
  const eL = expected(matmul64(f1.A.data, f1.B.data, 128, 10, 96), matmul64(f2.A.data, f2.B.data, 96, 10, 128));
  assert.ok(relMax((await runModel(outL, feeds, 'Y1')).data, eL.y1) < 1e-5);
  assert.ok(relMax((await runModel(outL, feeds, 'Y2')).data, eL.y2) < 1e-5);
  assert.equal(countOps(outL).Gemm ?? 0, 0);
  check(t, outL);

  // MPO, truncated; W2 is contracted over its columns (transB = 1).
  const m1 = await decomposeMpo(w1, 128, 96, { backend, outFactors: [8, 16], inFactors: [8, 12], truncation: { chi: 6 }, spectra: 'sweep' });
  const m2 = await decomposeMpo(w2, 96, 128, { backend, outFactors: [4, 4, 6], inFactors: [4, 4, 8], truncation: { chi: 5 }, spectra: 'sweep' });
  const eM = expected(await reconstructMpo(m1, backend), await reconstructMpo(m2, backend));
  for (const order of ['left-to-right', 'right-to-left'] as const) {
    const outM = path.join(dir, `gemm_mpo_${order}.onnx`);
    await writeOnnx(src, outM, { replacements: { W1: { ...mpoReplacement(m1), order }, W2: { ...mpoReplacement(m2), order } } });
    assert.ok(relMax((await runModel(outM, feeds, 'Y1')).data, eM.y1) < 1e-5, order);
    assert.ok(relMax((await runModel(outM, feeds, 'Y2')).data, eM.y2) < 1e-5, order);
    if (order === 'right-to-left') check(t, outM);
  }
});

test('mpoContractionMacs: the two site orders of a 2-site MPO, worked by hand', () => {
  // [128, 512] as o = (8, 16), i = (16, 32), chi = 25, x @ W contracts the rows (p = o, q = i):
  // left-to-right: P_{>0} chi_0 p_0 q_0 chi_1 + Q_{<1} chi_1 p_1 q_1 chi_2 = 16*8*16*25 + 16*25*16*32 = 256,000;
  // right-to-left: Q_{>0} p_0 chi_1 chi_0 q_0 + P_{<1} p_1 chi_2 chi_1 q_1 = 32*8*25*16 + 8*16*25*32 = 204,800.
  assert.equal(mpoContractionMacs([8, 16], [16, 32], [25], 'rows', 'left-to-right'), 256000);
  assert.equal(mpoContractionMacs([8, 16], [16, 32], [25], 'rows', 'right-to-left'), 204800);
  // Both exceed the dense 128 x 512 = 65,536 MACs: few parameters do not mean few FLOPs.
  assert.equal(mpoContractionMacs([8, 16], [16, 32], [4], 'rows', 'left-to-right'), 16 * 8 * 16 * 4 + 16 * 4 * 16 * 32);
});

test('stories260K.onnx (Transpose(W) -> MatMul): every projection low-rank at full rank, one MPO; logits within 1e-3', async (t) => {
  const c = await openOnnx(STORIES);
  const replacements = new Map<string, OnnxReplacement>();
  let qProj: { name: string; data: Float32Array } | undefined;
  try {
    for (const tensor of c.tensors) {
      if (!/__(q|k|v|o|gate|up|down)_proj__weight$/.test(tensor.name)) continue;
      const [m, n] = tensor.shape;
      const w = await tensor.read();
      const f = await lowRankFactors({ rows: m, cols: n, data: w }, Math.min(m, n), backend);
      replacements.set(tensor.name, { kind: 'lowrank', a: f.A.data, b: f.B.data });
      if (tensor.name === 'model__layers__1__self_attn__q_proj__weight') qProj = { name: tensor.name, data: w };
    }
  } finally { await c.close(); }
  assert.equal(replacements.size, 35);
  const out = path.join(dir, 'stories_lowrank_full.onnx');
  const res = await writeOnnx(STORIES, out, { replacements });
  for (const r of res.replacements) {
    assert.equal(r.keptOriginal, false, r.name);
    assert.deepEqual(r.consumers.map((x) => [x.opType, x.rewritten]), [['Transpose', true]]);
  }
  const before = countOps(STORIES), afterOps = countOps(out);
  assert.equal(afterOps.MatMul, before.MatMul + 35, 'x @ W^T became (x @ b^T) @ a^T');
  assert.equal(res.nodes.after, res.nodes.before + 35 * 2 /* constant factor transposes */ - 35 /* Transpose(W) */ + 35 /* second MatMul */);
  const ids = { input_ids: tokenIds(40, 512) };
  const l0 = await runModel(STORIES, ids, 'logits');
  const d = maxAbsDiff(l0.data, (await runModel(out, ids, 'logits')).data);
  assert.ok(d < 1e-3, `full-rank logits differ by ${d}`);
  check(t, out);

  // q_proj [64, 64] as an MPO (o = (8, 8), i = (8, 8)) at full bond dimension, contracted over W's columns.
  const m = await decomposeMpo(qProj!.data, 64, 64, { backend, outFactors: [8, 8], inFactors: [8, 8], spectra: 'sweep' });
  const outM = path.join(dir, 'stories_mpo_q1.onnx');
  const resM = await writeOnnx(STORIES, outM, { replacements: { [qProj!.name]: mpoReplacement(m) } });
  assert.equal(resM.replacements[0].keptOriginal, false);
  const dM = maxAbsDiff(l0.data, (await runModel(outM, ids, 'logits')).data);
  assert.ok(dM < 1e-3, `full-bond MPO logits differ by ${dM}`);
});
