/**
 * The GPT-2 forward pass as an ONNX graph (Radford et al. 2019; the PicoGPT layout):
 *   h_0 = wte[ids] + wpe[0..seq)
 *   per block:  a = LN_1(h);  [q k v] = a W_attn + b_attn;  h += Attn(q, k, v) W_proj + b_proj
 *               m = LN_2(h);  h += GELU(m W_fc + b_fc) W_mproj + b_mproj
 *   logits = LN_f(h) W_head^T      (W_head = wte when the head is tied)
 * LN(x) = (x - mean) / sqrt(var + eps) * gamma + beta (ONNX LayerNormalization, biased variance).
 * GELU exact: 0.5 x (1 + erf(x / sqrt 2)); tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 */
import type { Gpt2Architecture } from './architecture';
import { attention, finish, prologue, TransformerGraph, type GraphBuildOptions, type WeightSource } from './graphCommon';
import type { GraphBuilder } from './onnxGraph';

function gelu(g: GraphBuilder, x: string, kind: 'erf' | 'tanh', hint: string): string {
  if (kind === 'erf') {
    const e = g.op1('Erf', [g.op1('Div', [x, g.scalar(Math.SQRT2, 'sqrt2')], {}, `${hint}/x_over_sqrt2`)], {}, `${hint}/erf`);
    const onePlus = g.op1('Add', [e, g.scalar(1, 'one')], {}, `${hint}/one_plus`);
    return g.op1('Mul', [g.op1('Mul', [x, onePlus], {}, `${hint}/x_times`), g.scalar(0.5, 'half')], {}, `${hint}/gelu`);
  }
  const x3 = g.op1('Mul', [g.op1('Mul', [x, x], {}, `${hint}/x2`), x], {}, `${hint}/x3`);
  const inner = g.op1('Add', [x, g.op1('Mul', [x3, g.scalar(0.044715, 'c')], {}, `${hint}/cx3`)], {}, `${hint}/inner`);
  const t = g.op1('Tanh', [g.op1('Mul', [inner, g.scalar(Math.sqrt(2 / Math.PI), 'sqrt_2_over_pi')], {}, `${hint}/arg`)], {}, `${hint}/tanh`);
  const onePlus = g.op1('Add', [t, g.scalar(1, 'one')], {}, `${hint}/one_plus`);
  return g.op1('Mul', [g.op1('Mul', [x, onePlus], {}, `${hint}/x_times`), g.scalar(0.5, 'half')], {}, `${hint}/gelu`);
}

/** Builds the ONNX ModelProto bytes of a GPT-2 family checkpoint. */
export async function buildGpt2Graph(arch: Gpt2Architecture, weights: WeightSource, options: GraphBuildOptions = {}): Promise<Uint8Array> {
  const tg = new TransformerGraph(weights, options);
  const g = tg.g;
  const { ids, seqLen, mask } = prologue(g);
  const n = arch.names;
  const tok = g.op1('Gather', [await tg.weight(n.wte), ids], { axis: 0 }, 'tok_emb');
  const pos = g.op1('Slice', [await tg.weight(n.wpe), g.int64([0]), seqLen, g.int64([0])], {}, 'pos_emb');
  let h = g.op1('Add', [tok, pos], {}, 'h0');
  const d = arch.dModel;
  for (let l = 0; l < arch.nLayer; l++) {
    const L = n.layers[l];
    const p = `h.${l}`;
    tg.residual(l, h);
    const a = g.op1('LayerNormalization', [h, await tg.weight(L.ln1[0]), await tg.weight(L.ln1[1])], { axis: -1, epsilon: { float: arch.eps } }, `${p}/ln_1`);
    const qkv = await tg.linear(a, L.qkv[0], L.qkv[1], arch.layout, `${p}/qkv`);
    const [q, k, v] = g.op('Split', [qkv, g.int64([d, d, d])], { axis: 1 }, `${p}/split`, 3);
    const heads = (x: string, nm: string) => g.op1('Reshape', [x, g.int64([-1, arch.nHead, arch.headDim])], {}, `${p}/${nm}`);
    const att = attention(g, heads(q, 'q'), heads(k, 'k'), heads(v, 'v'), mask, arch.nHead, arch.nHead, arch.headDim, `${p}/attn`);
    const proj = await tg.linear(att, L.attnOut[0], L.attnOut[1], arch.layout, `${p}/attn_proj`);
    h = g.op1('Add', [h, proj], {}, `${p}/resid_attn`);
    const m = g.op1('LayerNormalization', [h, await tg.weight(L.ln2[0]), await tg.weight(L.ln2[1])], { axis: -1, epsilon: { float: arch.eps } }, `${p}/ln_2`);
    const fc = await tg.linear(m, L.fc[0], L.fc[1], arch.layout, `${p}/fc`);
    const out = await tg.linear(gelu(g, fc, arch.gelu, `${p}/mlp`), L.proj[0], L.proj[1], arch.layout, `${p}/mlp_proj`);
    h = g.op1('Add', [h, out], {}, `${p}/resid_mlp`);
  }
  tg.residual('final', h);
  const f = g.op1('LayerNormalization', [h, await tg.weight(n.lnf[0]), await tg.weight(n.lnf[1])], { axis: -1, epsilon: { float: arch.eps } }, 'ln_f');
  // The head is [vocab, d] in every layout (lm_head is an nn.Linear, GGUF output too, wte when tied).
  const logits = await tg.linear(f, n.head ?? n.wte, undefined, 'linear', 'head');
  tg.report();
  return finish(g, logits, arch.vocabSize, 'gpt2', {
    family: 'gpt2', layout: arch.layout, gelu: arch.gelu, n_head: String(arch.nHead), context_length: String(arch.contextLength), tied_head: String(!n.head),
  }, tg.extraOutputs(d));
}
