import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { zipSync } from 'fflate';
import { open, CheckpointError } from '../../../src/core/checkpoint';
import { writeNpy, npyHeaderF32 } from '../../../src/core/checkpoint/npy';
import { writeSafetensors } from '../../../src/core/checkpoint/safetensorsWriter';
import {
  residualWriters, ablateDirection, directionComponent, removeTopDirections, injectionVectors, injectRankOne, loadDirection, writerAxis, normalise,
} from '../../../src/core/surgery/ablate';
import { getLinalgBackend } from '../../../src/core/linalg';
import { PICO, STORIES_GGUF, STORIES_ST, tempDir, norm, seededVector } from './surgeryTestUtil';

test('residual writers of PicoGPT (Linear layout), stories260K GGUF and HF Llama names', async () => {
  const pico = await open(PICO);
  try {
    const r = residualWriters(pico);
    assert.equal(r.family, 'gpt2');
    assert.equal(r.dModel, 128);
    assert.equal(r.layout, 'linear', 'c_attn is [384, 128] = [3d, d]: torch Linear [out, in]');
    const names = r.writers.map((w) => w.name).sort();
    const expected = ['wpe.weight', 'wte.weight'];
    for (let i = 0; i < 4; i++) for (const m of ['attn', 'mlp']) expected.push(`h.${i}.${m}.c_proj.weight`, `h.${i}.${m}.c_proj.bias`);
    assert.deepEqual(names, expected.sort());
    for (const w of r.writers) {
      if (w.kind === 'bias') assert.deepEqual(w.shape, [128]);
      else if (w.kind === 'embedding' || w.kind === 'position-embedding') assert.equal(w.residualAxis, 1);
      else { assert.equal(w.residualAxis, 0); assert.equal(w.shape[0], 128); }
    }
  } finally { await pico.close(); }

  const gguf = await open(STORIES_GGUF);
  try {
    const r = residualWriters(gguf);
    assert.equal(r.family, 'llama');
    assert.equal(r.naming, 'gguf');
    assert.equal(r.dModel, 64);
    assert.deepEqual(r.writers.map((w) => w.name).sort(), ['token_embd.weight', ...[0, 1, 2, 3, 4].flatMap((i) => [`blk.${i}.attn_output.weight`, `blk.${i}.ffn_down.weight`])].sort());
    assert.equal(r.writers.find((w) => w.name === 'blk.2.ffn_down.weight')!.residualAxis, 0, 'ffn_down [64, 172]: rows are d_model');
    assert.ok(!r.writers.some((w) => w.name === 'output.weight'), 'the untied head reads the residual stream, it does not write it');
  } finally { await gguf.close(); }

  const st = await open(STORIES_ST);
  try {
    const r = residualWriters(st);
    assert.equal(r.family, 'llama');
    assert.equal(r.writers.length, 11);
    assert.ok(r.writers.some((w) => w.name === 'model.layers.4.mlp.down_proj.weight' && w.residualAxis === 0));
    assert.ok(r.writers.some((w) => w.name === 'model.embed_tokens.weight' && w.residualAxis === 1));
  } finally { await st.close(); }
});

test('residual writers of Hugging Face GPT-2 (Conv1D [in, out]): the residual is the column axis', () => {
  const d = 16;
  const tensors = [
    { name: 'transformer.wte.weight', shape: [50, d] },
    { name: 'transformer.wpe.weight', shape: [32, d] },
    { name: 'transformer.h.0.attn.c_attn.weight', shape: [d, 3 * d] },
    { name: 'transformer.h.0.attn.c_proj.weight', shape: [d, d] },
    { name: 'transformer.h.0.mlp.c_fc.weight', shape: [d, 4 * d] },
    { name: 'transformer.h.0.mlp.c_proj.weight', shape: [4 * d, d] },
    { name: 'lm_head.weight', shape: [50, d] },
  ];
  const r = residualWriters({ tensors });
  assert.equal(r.layout, 'conv1d');
  assert.deepEqual(r.writers.map((w) => [w.name, w.residualAxis]), [
    ['transformer.wte.weight', 1], ['transformer.wpe.weight', 1], ['transformer.h.0.attn.c_proj.weight', 1], ['transformer.h.0.mlp.c_proj.weight', 1],
  ]);
});

test('directional ablation: r^T W = 0 (axis 0), W r = 0 (axis 1), only the r-component changes', () => {
  const rows = 24, cols = 40;
  const w0 = seededVector(rows * cols, 1);
  const r = normalise(seededVector(rows, 2));
  const w = Float32Array.from(w0);
  ablateDirection(w, rows, cols, r, 0);
  assert.ok(directionComponent(w, rows, cols, r, 0) < 1e-6 * norm(w0));
  // W - W' = r (r^T W): rank one, and ||W||^2 = ||W'||^2 + ||r^T W||^2 (Pythagoras).
  const before = directionComponent(w0, rows, cols, r, 0);
  assert.ok(Math.abs(norm(w0) ** 2 - (norm(w) ** 2 + before ** 2)) < 1e-4 * norm(w0) ** 2);
  // A vector orthogonal to r passes through unchanged: x^T W' = x^T W.
  const x = Float64Array.from(seededVector(rows, 3));
  let dot = 0; for (let i = 0; i < rows; i++) dot += x[i] * r[i];
  for (let i = 0; i < rows; i++) x[i] -= dot * r[i];
  for (let j = 0; j < cols; j++) {
    let a = 0, b = 0;
    for (let i = 0; i < rows; i++) { a += x[i] * w0[i * cols + j]; b += x[i] * w[i * cols + j]; }
    assert.ok(Math.abs(a - b) < 1e-4, `column ${j}`);
  }
  const e = Float32Array.from(seededVector(cols * rows, 4));
  const rc = normalise(seededVector(cols, 5));
  ablateDirection(e, rows, cols, rc, 1);
  assert.ok(directionComponent(e, rows, cols, rc, 1) < 1e-6 * norm(e));
  assert.throws(() => ablateDirection(e, rows, cols, rc, 0, 'blk.0.ffn_down.weight'), /tensor blk\.0\.ffn_down\.weight: its residual dimension \(axis 0 of \[24, 40\]\) is 24, the direction has 40/);
  assert.throws(() => writerAxis('h.0.mlp.c_proj.weight', [128, 512], 64), /tensor h\.0\.mlp\.c_proj\.weight: shape \[128, 512\] has no dimension equal to the direction's d_model = 64/);
  assert.equal(writerAxis('wte.weight', [65, 128], 128), 1);
});

test('remove top-k: the result has exactly the remaining singular values', async () => {
  const backend = await getLinalgBackend();
  try {
    const rows = 30, cols = 20;
    const w = seededVector(rows * cols, 9);
    const s0 = await backend.singularValues({ rows, cols, data: w }, { method: 'direct' });
    const removed = await removeTopDirections(w, rows, cols, 3, backend);
    assert.deepEqual(removed.singularValues.map((x) => x.toFixed(5)), Array.from(s0.subarray(0, 3)).map((x) => x.toFixed(5)));
    const s1 = await backend.singularValues({ rows, cols, data: w }, { method: 'direct' });
    for (let i = 0; i < 17; i++) assert.ok(Math.abs(s1[i] - s0[i + 3]) < 1e-4 * s0[0], `s_${i}`);
    for (let i = 17; i < 20; i++) assert.ok(s1[i] < 1e-4 * s0[0]);
  } finally { await backend.dispose(); }
});

test('injection: seeded unit vectors, W + s u v^T, explicit vectors checked', () => {
  const a = injectionVectors(5, 7, { seed: 3 }), b = injectionVectors(5, 7, { seed: 3 }), c = injectionVectors(5, 7, { seed: 4 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.u, c.u);
  assert.ok(Math.abs(norm(a.u) - 1) < 1e-12 && Math.abs(norm(a.v) - 1) < 1e-12);
  const w = new Float32Array(35);
  injectRankOne(w, 5, 7, 2, a.u, a.v);
  assert.ok(Math.abs(norm(w) - 2) < 1e-6, '||s u v^T||_F = s');
  assert.throws(() => injectionVectors(5, 7, { u: [1, 2], v: [1, 2, 3, 4, 5, 6, 7] }, 'x'), /inject into x: u has 2 entries, the tensor has 5 rows/);
});

test('loadDirection reads npy, npz (by key), safetensors (by key) and pt; shapes [d], [1, d]; clear errors', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const r = seededVector(16, 11);
    const npy = path.join(dir, 'r.npy');
    await writeNpy(npy, r, [1, 16]);
    const fromNpy = await loadDirection(npy);
    assert.ok(Math.abs(fromNpy.norm - norm(r)) < 1e-5);
    assert.ok(Math.abs(norm(fromNpy.r) - 1) < 1e-12);
    for (let i = 0; i < 16; i++) assert.ok(Math.abs(fromNpy.r[i] - r[i] / norm(r)) < 1e-6);

    const npyBytes = (v: Float32Array, shape: number[]) => { const h = npyHeaderF32(shape); const out = new Uint8Array(h.length + v.byteLength); out.set(h); out.set(new Uint8Array(v.buffer), h.length); return out; };
    const npz = path.join(dir, 'dirs.npz');
    await fsp.writeFile(npz, zipSync({ 'refusal.npy': npyBytes(r, [16]), 'other.npy': npyBytes(seededVector(16, 12), [16]) }));
    const fromNpz = await loadDirection(npz, 'refusal');
    for (let i = 0; i < 16; i++) assert.ok(Math.abs(fromNpz.r[i] - fromNpy.r[i]) < 1e-7);
    await assert.rejects(loadDirection(npz), (e: Error) => e instanceof CheckpointError && /holds 2 tensors .*pick the direction with a key/.test(e.message));
    await assert.rejects(loadDirection(npz, 'nope'), /no tensor named "nope"; the file holds/);

    const st = path.join(dir, 'dirs.safetensors');
    await writeSafetensors(st, [
      { name: 'layer_5', shape: [16], dtype: 'F32', data: async () => r },
      { name: 'matrix', shape: [4, 4], dtype: 'F32', data: async () => r },
    ], { inputs: [] });
    const fromSt = await loadDirection(st, 'layer_5');
    assert.equal(fromSt.tensor, 'layer_5');
    await assert.rejects(loadDirection(st, 'matrix'), /direction must have shape \[d\], \[1, d\] or \[d, 1\], got \[4, 4\]/);

    const pt = path.join(dir, 'r.pt');
    const py = `import sys, os\nos.environ['OMP_WAIT_POLICY']='PASSIVE'\nimport torch\ntorch.save(torch.tensor([${Array.from(r).join(',')}], dtype=torch.float32), sys.argv[1])\n`;
    const { spawnSync } = await import('node:child_process');
    const res = spawnSync('/usr/bin/python3', ['-c', py, pt], { encoding: 'utf8' });
    if (res.status !== 0) {
      console.log(`skipping the .pt case: /usr/bin/python3 with torch is not available (${(res.stderr || String(res.error)).split('\n').filter(Boolean).pop()})`);
    } else {
      const fromPt = await loadDirection(pt);
      for (let i = 0; i < 16; i++) assert.ok(Math.abs(fromPt.r[i] - fromNpy.r[i]) < 1e-7);
    }
  } finally { await cleanup(); }
});
