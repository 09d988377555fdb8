import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { open } from '../../../src/core/checkpoint';
import { applyRecipe, INPUT_SHA256_METADATA_KEY } from '../../../src/core/surgery/apply';
import { PICO_ONNX, tempDir } from './surgeryTestUtil';

async function logits(model: string, ids: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model);
  try {
    const out = await s.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) });
    return out.logits.data as Float32Array;
  } finally {
    await s.release();
  }
}

test('ONNX output: dense and factorized low-rank pico.onnx compute the same logits; provenance in metadata_props', async () => {
  const { dir, cleanup } = await tempDir('surgery-onnx-');
  try {
    const dense = path.join(dir, 'dense.onnx');
    const fact = path.join(dir, 'fact.onnx');
    const recipe = { version: 1 as const, input: PICO_ONNX, compress: [{ method: 'svd' as const, rank: 24, tensors: 'onnx::MatMul_*' }] };
    const rd = await applyRecipe({ ...recipe, output: { path: dense } });
    const rf = await applyRecipe({ ...recipe, output: { path: fact, factorized: true } });
    assert.equal(rd.tensors.length, rf.tensors.length);
    assert.ok(rd.tensors.length >= 16);
    assert.deepEqual(rd.tensors.map((t) => t.relativeError), rf.tensors.map((t) => t.relativeError));
    assert.ok(rf.tensors.every((t) => t.stored.length === 2 && t.stored[0].endsWith('.lowrank.a')));
    const ids = [18, 47, 56, 57, 58, 1, 15, 47, 58, 47, 64, 43, 52, 10];
    const [l0, l1, l2] = [await logits(PICO_ONNX, ids), await logits(dense, ids), await logits(fact, ids)];
    let d12 = 0, d01 = 0, n = 0;
    for (let i = 0; i < l1.length; i++) { d12 = Math.max(d12, Math.abs(l1[i] - l2[i])); d01 = Math.max(d01, Math.abs(l0[i] - l1[i])); n = Math.max(n, Math.abs(l1[i])); }
    assert.ok(d12 < 1e-3 * n, `factorized graph = dense reconstruction (max |diff| ${d12}, max |logit| ${n})`);
    assert.ok(d01 > 1e-2 * n, 'rank 24 does change the model');
    const c = await open(fact);
    try {
      const props = c.metadata.metadataProps as Record<string, string>;
      assert.equal(props[INPUT_SHA256_METADATA_KEY], rf.provenance.input.sha256);
      assert.ok(c.get(`${rf.tensors[0].name}.lowrank.a`));
    } finally { await c.close(); }
  } finally { await cleanup(); }
});
