/**
 * The Llama forward pass as an ONNX graph (Touvron et al. 2023):
 *   h_0 = E[ids]
 *   per block:  a = RMSNorm(h) * g_attn;  q = RoPE(a Wq^T), k = RoPE(a Wk^T), v = a Wv^T
 *               h += Attn(q, k, v) Wo^T                      (grouped-query: H query heads, Hkv KV heads)
 *               m = RMSNorm(h) * g_ffn;  h += (SiLU(m Wgate^T) * (m Wup^T)) Wdown^T      (SwiGLU)
 *   logits = (RMSNorm(h) * g_out) Whead^T                    (Whead = E when tied)
 * RMSNorm(x) = x / sqrt(mean(x^2) + eps);  SiLU(x) = x sigmoid(x).
 * RoPE at position p rotates each pair (x_a, x_b) by the angle p theta_i, theta_i = base^(-2i/d_head),
 * i = 0 .. d_head/2 - 1:  x_a' = x_a cos - x_b sin,  x_b' = x_a sin + x_b cos, with the pair
 * (x[2i], x[2i+1]) in the interleaved order (Meta, llama2.c, GGUF) or (x[i], x[i + d/2]) in the
 * Hugging Face order (rotate_half).
 */
import type { LlamaArchitecture, RopeOrder } from './architecture';
import { attention, finish, prologue, TransformerGraph, type GraphBuildOptions, type WeightSource } from './graphCommon';
import type { GraphBuilder } from './onnxGraph';

/** Longest sequence the RoPE tables cover; models claiming more are evaluated up to this length. */
export const MAX_ROPE_POSITIONS = 8192;

/** cos/sin tables [positions, 1, d/2, 1] (interleaved) or [positions, 1, 1, d/2] (half), angles in float64. */
export function ropeTables(positions: number, headDim: number, base: number, order: RopeOrder): { cos: Float32Array; sin: Float32Array; dims: number[] } {
  const half = headDim / 2;
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(base, (-2 * i) / headDim);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin, dims: order === 'interleaved' ? [positions, 1, half, 1] : [positions, 1, 1, half] };
}

function rmsNorm(g: GraphBuilder, x: string, weight: string, eps: string, hint: string): string {
  const ms = g.op1('ReduceMean', [g.op1('Mul', [x, x], {}, `${hint}/sq`)], { axes: [-1], keepdims: 1 }, `${hint}/mean_sq`);
  const inv = g.op1('Reciprocal', [g.op1('Sqrt', [g.op1('Add', [ms, eps], {}, `${hint}/plus_eps`)], {}, `${hint}/rms`)], {}, `${hint}/inv_rms`);
  return g.op1('Mul', [g.op1('Mul', [x, inv], {}, `${hint}/normed`), weight], {}, hint);
}

function rope(g: GraphBuilder, x: string, nHeads: number, headDim: number, cos: string, sin: string, order: RopeOrder, hint: string): string {
  const half = headDim / 2;
  const axis = order === 'interleaved' ? 3 : 2;
  const pairs = g.op1('Reshape', [x, g.int64(order === 'interleaved' ? [-1, nHeads, half, 2] : [-1, nHeads, 2, half])], {}, `${hint}/pairs`);
  const [a, b] = g.op('Split', [pairs], { axis }, `${hint}/split`, 2);
  const aCos = g.op1('Mul', [a, cos], {}, `${hint}/a_cos`);
  const bSin = g.op1('Mul', [b, sin], {}, `${hint}/b_sin`);
  const aSin = g.op1('Mul', [a, sin], {}, `${hint}/a_sin`);
  const bCos = g.op1('Mul', [b, cos], {}, `${hint}/b_cos`);
  const ra = g.op1('Sub', [aCos, bSin], {}, `${hint}/rot_a`);
  const rb = g.op1('Add', [aSin, bCos], {}, `${hint}/rot_b`);
  const joined = g.op1('Concat', [ra, rb], { axis }, `${hint}/joined`);
  return g.op1('Reshape', [joined, g.int64([-1, nHeads, headDim])], {}, `${hint}/rotated`);
}

/** Builds the ONNX ModelProto bytes of a Llama family checkpoint. */
export async function buildLlamaGraph(arch: LlamaArchitecture, weights: WeightSource, options: GraphBuildOptions = {}): Promise<Uint8Array> {
  const tg = new TransformerGraph(weights, options);
  const g = tg.g;
  const { ids, seqLen, mask } = prologue(g);
  const n = arch.names;
  const positions = Math.min(arch.contextLength, MAX_ROPE_POSITIONS);
  const tables = ropeTables(positions, arch.headDim, arch.ropeBase, arch.ropeOrder);
  const cosAll = g.floatInit('rope.cos', tables.dims, tables.cos);
  const sinAll = g.floatInit('rope.sin', tables.dims, tables.sin);
  const cos = g.op1('Slice', [cosAll, g.int64([0]), seqLen, g.int64([0])], {}, 'rope_cos');
  const sin = g.op1('Slice', [sinAll, g.int64([0]), seqLen, g.int64([0])], {}, 'rope_sin');
  const eps = g.scalar(arch.eps, 'rms_eps');
  let h = g.op1('Gather', [await tg.weight(n.embed), ids], { axis: 0 }, 'tok_emb');
  for (let l = 0; l < arch.nLayer; l++) {
    const L = n.layers[l];
    const p = `layers.${l}`;
    tg.residual(l, h);
    const a = rmsNorm(g, h, await tg.weight(L.attnNorm), eps, `${p}/attn_norm`);
    const q = await tg.linear(a, L.q, L.qBias, 'linear', `${p}/q`);
    const k = await tg.linear(a, L.k, L.kBias, 'linear', `${p}/k`);
    const v = await tg.linear(a, L.v, L.vBias, 'linear', `${p}/v`);
    const qr = rope(g, q, arch.nHead, arch.headDim, cos, sin, arch.ropeOrder, `${p}/q_rope`);
    const kr = rope(g, k, arch.nKvHead, arch.headDim, cos, sin, arch.ropeOrder, `${p}/k_rope`);
    const vh = g.op1('Reshape', [v, g.int64([-1, arch.nKvHead, arch.headDim])], {}, `${p}/v_heads`);
    const att = attention(g, qr, kr, vh, mask, arch.nHead, arch.nKvHead, arch.headDim, `${p}/attn`);
    h = g.op1('Add', [h, await tg.linear(att, L.o, undefined, 'linear', `${p}/o`)], {}, `${p}/resid_attn`);
    const m = rmsNorm(g, h, await tg.weight(L.ffnNorm), eps, `${p}/ffn_norm`);
    const gate = await tg.linear(m, L.gate, undefined, 'linear', `${p}/gate`);
    const up = await tg.linear(m, L.up, undefined, 'linear', `${p}/up`);
    const silu = g.op1('Mul', [gate, g.op1('Sigmoid', [gate], {}, `${p}/sigmoid`)], {}, `${p}/silu`);
    const down = await tg.linear(g.op1('Mul', [silu, up], {}, `${p}/swiglu`), L.down, undefined, 'linear', `${p}/down`);
    h = g.op1('Add', [h, down], {}, `${p}/resid_mlp`);
  }
  tg.residual('final', h);
  const f = rmsNorm(g, h, await tg.weight(n.norm), eps, 'norm');
  const logits = await tg.linear(f, n.head ?? n.embed, undefined, 'linear', 'head');
  tg.report();
  return finish(g, logits, arch.vocabSize, 'llama', {
    family: 'llama', rope_order: arch.ropeOrder, n_head: String(arch.nHead), n_kv_head: String(arch.nKvHead),
    context_length: String(positions), tied_head: String(!n.head),
  }, tg.extraOutputs(arch.dModel));
}
