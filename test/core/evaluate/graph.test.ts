import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as os from 'node:os';
import { promises as fsp } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { open, CheckpointError } from '../../../src/core/checkpoint';
import { FACTORIZATION_METADATA_KEY, factorizationMetadataValue, lowRankFactorization, lowRankTensorNames, writeSafetensors } from '../../../src/core/checkpoint/safetensorsWriter';
import { decodeModel } from '../../../src/core/checkpoint/onnxProto';
import { buildGraphFor, detectArchitecture, loadModel, readSidecarConfig, requireTokenizer, type Gpt2Architecture, type LlamaArchitecture } from '../../../src/core/evaluate';
import { PICO, STORIES, STORIES_GGUF, picoValidationText } from './fixtures';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('architecture: PicoGPT safetensors is GPT-2, Linear layout, exact GELU, 4 heads, context 128', async () => {
  const ckpt = await open(path.join(PICO, 'pico.safetensors'));
  try {
    const a = detectArchitecture(ckpt, await readSidecarConfig(ckpt.path)) as Gpt2Architecture;
    assert.equal(a.family, 'gpt2');
    assert.equal(a.layout, 'linear');
    assert.equal(a.gelu, 'erf');
    assert.deepEqual([a.nLayer, a.nHead, a.dModel, a.dFF, a.vocabSize, a.contextLength], [4, 4, 128, 512, 65, 128]);
    assert.equal(a.names.head, undefined, 'pico.safetensors has no lm_head: the head is tied to wte');
  } finally { await ckpt.close(); }
});

test('architecture: stories260K GGUF is Llama with 8 query / 4 KV heads, interleaved RoPE, eps from metadata', async () => {
  const ckpt = await open(STORIES_GGUF);
  try {
    const a = detectArchitecture(ckpt, undefined) as LlamaArchitecture;
    assert.equal(a.family, 'llama');
    assert.deepEqual([a.nLayer, a.nHead, a.nKvHead, a.headDim, a.dModel, a.dFF, a.vocabSize], [5, 8, 4, 8, 64, 172, 512]);
    assert.equal(a.ropeOrder, 'interleaved');
    assert.ok(Math.abs(a.eps - 1e-5) < 1e-10);
    assert.equal(a.ropeBase, 10000);
  } finally { await ckpt.close(); }
});

test('architecture: RoPE order from the safetensors hint; the .pt without a hint defaults to half; the option wins', async () => {
  const st = await open(path.join(STORIES, 'stories260K.safetensors'));
  const pt = await open(path.join(STORIES, 'stories260K.pt'));
  try {
    const side = await readSidecarConfig(st.path);
    const s = detectArchitecture(st, side) as LlamaArchitecture;
    assert.equal(s.ropeOrder, 'interleaved');
    assert.match(s.ropeSource, /interleaved/);
    const p = detectArchitecture(pt, side) as LlamaArchitecture;
    assert.equal(p.ropeOrder, 'half');
    assert.equal(p.nHead, 8, 'head count from the sibling meta.json');
    assert.equal((detectArchitecture(pt, side, { ropeOrder: 'interleaved' }) as LlamaArchitecture).ropeOrder, 'interleaved');
  } finally { await st.close(); await pt.close(); }
});

test('architecture: a Llama file with no head count anywhere is refused with a clear error', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-eval-'));
  try {
    const copy = path.join(dir, 'stories.pt');
    await fsp.copyFile(path.join(STORIES, 'stories260K.pt'), copy);
    const ckpt = await open(copy);
    try {
      assert.throws(() => detectArchitecture(ckpt, undefined), (e: unknown) => e instanceof CheckpointError && /attention heads/.test(e.message) && e.message.includes(copy));
      const a = detectArchitecture(ckpt, undefined, { nHead: 8 }) as LlamaArchitecture;
      assert.equal(a.nKvHead, 4, 'KV heads follow from the K rows / head size');
    } finally { await ckpt.close(); }
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('a checkpoint that is neither GPT-2 nor Llama is refused with the names we look for', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-eval-other-'));
  try {
    const f = path.join(dir, 'other.safetensors');
    await writeSafetensors(f, [{ name: 'encoder.conv.weight', shape: [4, 4], dtype: 'F32', data: async () => new Float32Array(16) }], { inputs: [] });
    await assert.rejects(loadModel(f), (e: unknown) => e instanceof CheckpointError && e.message.includes(f) && /h\.N\.attn\.c_attn\.weight/.test(e.message));
  } finally { await fsp.rm(dir, { recursive: true, force: true }); }
});

test('our PicoGPT graph (from pico.safetensors) gives the logits of the exported pico.onnx (max |diff| < 1e-4)', async () => {
  const ours = await loadModel(path.join(PICO, 'pico.safetensors'));
  const ref = await loadModel(path.join(PICO, 'pico.onnx'));
  try {
    assert.equal(ours.kind, 'graph');
    assert.equal(ref.kind, 'onnx');
    const ids = requireTokenizer(ours).encode(picoValidationText().slice(5000, 5128));
    assert.equal(ids.length, 128);
    for (const n of [1, 17, 128]) {
      const d = maxAbsDiff(await ours.logits(ids.slice(0, n)), await ref.logits(ids.slice(0, n)));
      assert.ok(d < 1e-4, `seq ${n}: max |diff| ${d}`);
    }
  } finally { await ours.close(); await ref.close(); }
});

test('an ONNX model with external data (pico_ext.onnx + .data) runs as it is, like pico.onnx', async () => {
  const ext = await loadModel(path.join(PICO, 'pico_ext.onnx'));
  const ref = await loadModel(path.join(PICO, 'pico.onnx'));
  try {
    assert.equal(ext.contextLength, 128);
    const ids = requireTokenizer(ext).encode('KING RICHARD:\nNow is the winter');
    assert.equal(maxAbsDiff(await ext.logits(ids), await ref.logits(ids)), 0);
  } finally { await ext.close(); await ref.close(); }
});

test('PicoGPT in other formats (pico.pt, F32/F16/Q8_0 GGUF) builds graphs that agree with pico.onnx to their precision', async () => {
  const ref = await loadModel(path.join(PICO, 'pico.onnx'));
  const ids = requireTokenizer(ref).encode(picoValidationText().slice(200, 264));
  const want = await ref.logits(ids);
  // F32 copies are exact up to float rounding; F16 and Q8_0 carry their quantisation error (Q8_0:
  // a per-32-block scale, ~0.4% per weight, adds up to a few tenths on logits of magnitude ~10), so
  // for those we also require the same argmax on nearly every position.
  const V = ref.vocabSize;
  const argmax = (l: Float32Array, r: number) => { let b = 0; for (let j = 1; j < V; j++) if (l[r * V + j] > l[r * V + b]) b = j; return b; };
  for (const [file, tol] of [['pico.pt', 1e-4], ['pico_f32.gguf', 1e-4], ['pico_f16.gguf', 0.05], ['pico_q8_0.gguf', 0.5]] as const) {
    const m = await loadModel(path.join(PICO, file));
    try {
      const got = await m.logits(ids);
      const d = maxAbsDiff(got, want);
      assert.ok(d < tol, `${file}: max |diff| ${d} >= ${tol}`);
      let same = 0;
      for (let r = 0; r < ids.length; r++) if (argmax(got, r) === argmax(want, r)) same++;
      assert.ok(same >= ids.length - 3, `${file}: argmax agrees on ${same} / ${ids.length} positions`);
    } finally { await m.close(); }
  }
  await ref.close();
});

test('Hugging Face Conv1D layout ([in, out] weights) is detected from the shapes and gives the same logits', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-eval-conv1d-'));
  const src = await open(path.join(PICO, 'pico.safetensors'));
  try {
    const transposeNames = /\.(c_attn|c_proj|c_fc)\.weight$/;
    const target = path.join(dir, 'model.safetensors');
    await writeSafetensors(target, src.tensors.map((t) => ({
      name: `transformer.${t.name}`,
      shape: transposeNames.test(t.name) ? [t.shape[1], t.shape[0]] : t.shape,
      dtype: 'F32',
      data: async () => {
        const v = await t.read();
        if (!transposeNames.test(t.name)) return v;
        const [r, c] = t.shape;
        const out = new Float32Array(v.length);
        for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = v[i * c + j];
        return out;
      },
    })), { inputs: src.files, metadata: { n_head: '4', n_positions: '128', activation_function: 'gelu' } });
    await fsp.copyFile(path.join(PICO, 'meta.json'), path.join(dir, 'meta.json'));
    const conv = await loadModel(target);
    const lin = await loadModel(path.join(PICO, 'pico.safetensors'));
    try {
      assert.equal((conv.architecture as Gpt2Architecture).layout, 'conv1d');
      const ids = requireTokenizer(lin).encode('First Citizen:\nBefore we proceed');
      assert.ok(maxAbsDiff(await conv.logits(ids), await lin.logits(ids)) < 1e-4);
    } finally { await conv.close(); await lin.close(); }
  } finally {
    await src.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('built graph: named input/output, initializers under the checkpoint names, runs for a symbolic seq length', async () => {
  const ckpt = await open(STORIES_GGUF);
  try {
    const { model, architecture } = await buildGraphFor(ckpt);
    const proto = decodeModel(model);
    assert.equal(proto.graph!.input![0].name, 'input_ids');
    assert.equal(proto.graph!.output![0].name, 'logits');
    const inits = new Set(proto.graph!.initializer!.map((t) => t.name));
    for (const t of ckpt.tensors) assert.ok(inits.has(t.name), `initializer ${t.name}`);
    const s = await ort.InferenceSession.create(model);
    for (const n of [1, 5]) {
      const out = await s.run({ input_ids: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]) });
      assert.deepEqual(out.logits.dims, [1, n, architecture.vocabSize]);
    }
    await s.release();
  } finally { await ckpt.close(); }
});

test('causal: the logits at position i do not depend on later tokens (Llama and GPT-2 graphs)', async () => {
  for (const file of [STORIES_GGUF, path.join(PICO, 'pico.safetensors')]) {
    const m = await loadModel(file);
    try {
      const a = [1, 20, 30, 40, 50, 60];
      const b = [1, 20, 30, 41, 7, 9];
      const la = await m.logits(a), lb = await m.logits(b);
      const V = m.vocabSize;
      assert.ok(maxAbsDiff(la.subarray(0, 3 * V), lb.subarray(0, 3 * V)) < 1e-5, `${file}: prefix logits changed`);
      assert.ok(maxAbsDiff(la.subarray(3 * V), lb.subarray(3 * V)) > 1e-3, `${file}: later logits should differ`);
    } finally { await m.close(); }
  }
});

test('weight overrides replace a tensor in the built graph (the hook surgery uses)', async () => {
  const file = path.join(PICO, 'pico.safetensors');
  const base = await loadModel(file);
  const zero = new Float32Array(128 * 512);
  const edited = await loadModel(file, { overrides: new Map([['h.2.mlp.c_proj.weight', zero]]) });
  try {
    const ids = [13, 14, 15, 16, 1, 2];
    assert.ok(maxAbsDiff(await base.logits(ids), await edited.logits(ids)) > 1e-3);
    await assert.rejects(loadModel(file, { overrides: new Map([['h.2.mlp.c_proj.weight', new Float32Array(3)]]) }), CheckpointError);
  } finally { await base.close(); await edited.close(); }
});

test('a factorized (low-rank) checkpoint from surgery is evaluated as the dense model its factors represent', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ts-eval-lowrank-'));
  const src = await open(path.join(PICO, 'pico.safetensors'));
  try {
    // Exact factorization W = a @ b with a = W and b = I (rank = cols): the logits must not change.
    const name = 'h.1.mlp.c_fc.weight';
    const [rows, cols] = src.get(name)!.shape;
    const { a, b } = lowRankTensorNames(name);
    const target = path.join(dir, 'pico_lowrank.safetensors');
    const tensors = src.tensors.filter((t) => t.name !== name).map((t) => ({ name: t.name, shape: t.shape, dtype: 'F32', data: () => t.read() }));
    tensors.push({ name: a, shape: [rows, cols], dtype: 'F32', data: () => src.get(name)!.read() });
    tensors.push({ name: b, shape: [cols, cols], dtype: 'F32', data: async () => { const e = new Float32Array(cols * cols); for (let i = 0; i < cols; i++) e[i * cols + i] = 1; return e; } });
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(src.metadata)) if (typeof v === 'string') meta[k] = v;
    meta[FACTORIZATION_METADATA_KEY] = factorizationMetadataValue({ [name]: lowRankFactorization(name, rows, cols, cols) });
    await writeSafetensors(target, tensors, { inputs: src.files, metadata: meta });
    const lr = await loadModel(target);
    const dense = await loadModel(path.join(PICO, 'pico.safetensors'));
    try {
      const ids = requireTokenizer(dense).encode('MENENIUS:\nWhat work');
      assert.ok(maxAbsDiff(await lr.logits(ids), await dense.logits(ids)) < 1e-4);
    } finally { await lr.close(); await dense.close(); }
  } finally {
    await src.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
