import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupOf } from '../../../src/core/checkpoint/grouping';

test('groupOf recognises the Hugging Face, GGUF and ONNX naming schemes', () => {
  const cases: Array<[string, string]> = [
    ['transformer.h.11.attn.c_attn.weight', 'block 11'],
    ['h.0.mlp.c_fc.weight', 'block 0'],
    ['model.layers.31.self_attn.q_proj.weight', 'block 31'],
    ['blk.7.ffn_down.weight', 'block 7'],
    ['encoder.layer.3.attention.self.query.weight', 'block 3'],
    ['/h.2/attn/MatMul', 'block 2'],
    ['transformer.wte.weight', 'embedding'],
    ['wpe.weight', 'embedding'],
    ['model.embed_tokens.weight', 'embedding'],
    ['token_embd.weight', 'embedding'],
    ['lm_head.weight', 'head'],
    ['output.weight', 'head'],
    ['output_norm.weight', 'head'],
    ['transformer.ln_f.bias', 'head'],
    ['model.norm.weight', 'head'],
    ['onnx::MatMul_1234', 'other'],
    ['rope_freqs', 'other'],
  ];
  for (const [name, label] of cases) assert.equal(groupOf(name).label, label, name);
  assert.equal(groupOf('model.layers.31.mlp.up_proj.weight').index, 31);
});
