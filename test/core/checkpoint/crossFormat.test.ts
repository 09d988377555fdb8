/**
 * The same trained weights in every format decode to the same float32 values: stories260K as GGUF
 * (llama.cpp), safetensors, torch.save zip and ONNX (embedded and external data); PicoGPT as
 * safetensors, torch.save zip, GGUF F32 and ONNX. F32 storage must agree bit for bit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { open, type Checkpoint } from '../../../src/core/checkpoint';

const FIX = path.resolve(__dirname, '../../../../shared/fixtures');

/** HF Llama name -> GGUF name (llama.cpp's converter table for the tensors stories260K has). */
function llamaHfToGguf(name: string): string {
  const fixed: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight',
  };
  if (fixed[name]) return fixed[name];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  assert.ok(m, `unexpected HF Llama name ${name}`);
  const part: Record<string, string> = {
    'self_attn.q_proj.weight': 'attn_q.weight', 'self_attn.k_proj.weight': 'attn_k.weight', 'self_attn.v_proj.weight': 'attn_v.weight',
    'self_attn.o_proj.weight': 'attn_output.weight', 'mlp.gate_proj.weight': 'ffn_gate.weight', 'mlp.up_proj.weight': 'ffn_up.weight',
    'mlp.down_proj.weight': 'ffn_down.weight', 'input_layernorm.weight': 'attn_norm.weight', 'post_attention_layernorm.weight': 'ffn_norm.weight',
  };
  assert.ok(part[m[2]], `unexpected HF Llama tensor ${name}`);
  return `blk.${m[1]}.${part[m[2]]}`;
}

/** PicoGPT (GPT-2 layout, Linear [out, in]) name -> GGUF gpt2 name. */
function picoToGguf(name: string): string {
  const fixed: Record<string, string> = {
    'wte.weight': 'token_embd.weight', 'wpe.weight': 'position_embd.weight', 'ln_f.weight': 'output_norm.weight',
    'ln_f.bias': 'output_norm.bias', 'lm_head.weight': 'output.weight',
  };
  if (fixed[name]) return fixed[name];
  const m = /^h\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  assert.ok(m, `unexpected pico name ${name}`);
  const part: Record<string, string> = {
    ln_1: 'attn_norm', 'attn.c_attn': 'attn_qkv', 'attn.c_proj': 'attn_output', ln_2: 'ffn_norm', 'mlp.c_fc': 'ffn_up', 'mlp.c_proj': 'ffn_down',
  };
  assert.ok(part[m[2]], `unexpected pico tensor ${name}`);
  return `blk.${m[1]}.${part[m[2]]}.${m[3]}`;
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

async function compareAll(base: Checkpoint, other: Checkpoint, mapName: (n: string) => string | undefined, label: string): Promise<number> {
  let compared = 0;
  for (const t of base.tensors) {
    const otherName = mapName(t.name);
    if (otherName === undefined) continue;
    const o = other.get(otherName);
    assert.ok(o, `${label}: ${other.path} has no ${otherName} (for ${t.name})`);
    assert.deepEqual(o.shape, t.shape, `${label}: shape of ${otherName}`);
    assert.equal(o.dtype, 'F32');
    assert.ok(bitsEqual(await t.read(), await o.read()), `${label}: ${t.name} vs ${otherName} differ`);
    compared++;
  }
  return compared;
}

test('stories260K: GGUF == safetensors == .pt == ONNX == ONNX external data, bit for bit', async () => {
  const st = await open(path.join(FIX, 'stories260k/stories260K.safetensors'));
  const gguf = await open(path.join(FIX, 'real/stories260K.gguf'));
  const pt = await open(path.join(FIX, 'stories260k/stories260K.pt'));
  const onnx = await open(path.join(FIX, 'stories260k/stories260K.onnx'));
  const onnxExt = await open(path.join(FIX, 'stories260k/stories260K_ext.onnx'));
  try {
    assert.equal(st.tensors.length, 48);
    assert.equal(await compareAll(st, gguf, llamaHfToGguf, 'gguf'), 48);
    assert.equal(await compareAll(st, pt, (n) => n, 'pt'), 48);
    // The ONNX export names initializers with "__" for "."; its head is tied to the embedding.
    const onnxName = (n: string) => (n === 'lm_head.weight' ? undefined : n.replace(/\./g, '__'));
    assert.equal(await compareAll(st, onnx, onnxName, 'onnx'), 47);
    assert.equal(await compareAll(st, onnxExt, onnxName, 'onnx external'), 47);
  } finally {
    await Promise.all([st, gguf, pt, onnx, onnxExt].map((c) => c.close()));
  }
});

test('PicoGPT: safetensors == .pt == GGUF F32, and the ONNX MatMul weights are their transposes', async () => {
  const st = await open(path.join(FIX, 'pico/pico.safetensors'));
  const pt = await open(path.join(FIX, 'pico/pico.pt'));
  const gguf = await open(path.join(FIX, 'pico/pico_f32.gguf'));
  const onnx = await open(path.join(FIX, 'pico/pico.onnx'));
  try {
    assert.equal(await compareAll(st, pt, (n) => n, 'pt'), st.tensors.length);
    assert.equal(await compareAll(st, gguf, picoToGguf, 'gguf'), st.tensors.length);
    // The ONNX exporter stores Linear weights transposed as onnx::MatMul_NNN: every 2-D Linear weight
    // of the safetensors must appear there transposed, bit for bit.
    const onnx2d = await Promise.all(onnx.tensors.filter((t) => t.shape.length === 2).map(async (t) => ({ t, v: await t.read() })));
    let found = 0;
    for (const t of st.tensors.filter((x) => x.shape.length === 2 && /\.(c_attn|c_proj|c_fc)\.weight$/.test(x.name))) {
      const [r, c] = t.shape;
      const w = await t.read();
      const wt = new Float32Array(r * c);
      for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) wt[j * r + i] = w[i * c + j];
      const match = onnx2d.find(({ t: o, v }) => o.shape[0] === c && o.shape[1] === r && bitsEqual(v, wt));
      assert.ok(match, `no transposed copy of ${t.name} in pico.onnx`);
      found++;
    }
    assert.equal(found, 16);
  } finally {
    await Promise.all([st, pt, gguf, onnx].map((c) => c.close()));
  }
});
