import type { TensorGroup } from './types';

/**
 * Groups tensors into embedding / block N / head / other by the common naming schemes:
 * - Hugging Face GPT-2: `transformer.h.3.attn.c_attn.weight`, `h.3.mlp.c_fc.weight`, `wte`, `wpe`, `ln_f`
 * - Hugging Face Llama: `model.layers.3.self_attn.q_proj.weight`, `model.embed_tokens`, `model.norm`, `lm_head`
 * - GGUF: `blk.3.attn_q.weight`, `token_embd.weight`, `output_norm.weight`, `output.weight`
 * - ONNX exports: `/h.3/attn/...`, `layers.3....`, `encoder.layer.3....`, `onnx::MatMul_123` (other)
 * The fallback is 'other': a tensor is never hidden.
 */
export function groupOf(name: string): TensorGroup {
  const block = /(?:^|[./_:])(?:h|layers?|blk|blocks?|block|decoder\.layers|encoder\.layer)[._/](\d+)(?:[._/]|$)/i.exec(name);
  if (block) {
    const index = Number(block[1]);
    return { kind: 'block', index, label: `block ${index}` };
  }
  const lower = name.toLowerCase();
  if (/(^|[./_])(wte|wpe|embed_tokens|embed_positions|token_embd|tok_embeddings|word_embeddings|position_embeddings|embeddings?|embd)([./_]|$)/.test(lower)) {
    return { kind: 'embedding', label: 'embedding' };
  }
  if (/(^|[./_])(lm_head|output|output_norm|ln_f|norm|final_layer_norm|final_norm|head|classifier)([./_]|$)/.test(lower)) {
    return { kind: 'head', label: 'head' };
  }
  return { kind: 'other', label: 'other' };
}

/** Sort key for groups: embedding, block 0..N, head, other. */
export function groupOrder(g: TensorGroup): number {
  switch (g.kind) {
    case 'embedding': return -1;
    case 'block': return g.index ?? 0;
    case 'head': return 1e9;
    default: return 1e9 + 1;
  }
}
