/**
 * Kind and depth of a tensor from its name, for the model map's rows (kind) and columns (block index).
 * Naming schemes covered: Hugging Face GPT-2 (h.N.attn.c_attn, h.N.mlp.c_fc, wte, wpe), Hugging Face
 * Llama (model.layers.N.self_attn.q_proj, mlp.gate_proj, embed_tokens, lm_head) and GGUF
 * (blk.N.attn_q, ffn_gate, token_embd, output).
 */
export type TensorKind = 'q' | 'k' | 'v' | 'qkv' | 'o' | 'gate' | 'up' | 'down' | 'embedding' | 'position' | 'head' | 'other';

/** Map rows, top to bottom: the order a token meets them. */
export const KIND_ORDER: readonly TensorKind[] = ['embedding', 'position', 'qkv', 'q', 'k', 'v', 'o', 'gate', 'up', 'down', 'head', 'other'];

export const KIND_LABEL: Record<TensorKind, string> = {
  embedding: 'embedding', position: 'position emb.', qkv: 'qkv', q: 'q', k: 'k', v: 'v', o: 'o (attn out)',
  gate: 'gate', up: 'up', down: 'down', head: 'head', other: 'other',
};

export interface TensorClass {
  kind: TensorKind;
  /** Block index, or null for tensors outside the blocks (embeddings, head). */
  depth: number | null;
}

const BLOCK = /(?:^|\.)(?:h|layers|layer|blk|block|blocks|decoder\.layers|encoder\.layer)\.(\d+)\./;

const RULES: Array<[RegExp, TensorKind]> = [
  [/(?:^|\.)(?:attn_qkv|c_attn|qkv_proj|query_key_value|Wqkv)(?:\.|$)/, 'qkv'],
  [/(?:^|\.)(?:attn_q|q_proj|wq|query)(?:\.|$)/, 'q'],
  [/(?:^|\.)(?:attn_k|k_proj|wk|key)(?:\.|$)/, 'k'],
  [/(?:^|\.)(?:attn_v|v_proj|wv|value)(?:\.|$)/, 'v'],
  [/(?:^|\.)(?:attn_output|o_proj|wo|out_proj|dense)(?:\.|$)|attn\.c_proj(?:\.|$)/, 'o'],
  [/(?:^|\.)(?:ffn_gate|gate_proj|w1)(?:\.|$)/, 'gate'],
  [/(?:^|\.)(?:ffn_up|up_proj|w3|c_fc|fc1|dense_h_to_4h)(?:\.|$)/, 'up'],
  [/(?:^|\.)(?:ffn_down|down_proj|w2|fc2|dense_4h_to_h)(?:\.|$)|mlp\.c_proj(?:\.|$)/, 'down'],
  [/(?:^|\.)(?:wpe|position_embd|position_embeddings|embed_positions)(?:\.|$)/, 'position'],
  [/(?:^|\.)(?:wte|token_embd|embed_tokens|word_embeddings|tok_embeddings)(?:\.|$)/, 'embedding'],
  [/(?:^|\.)(?:lm_head|output|head)(?:\.weight)?$/, 'head'],
];

export function classifyTensor(name: string): TensorClass {
  const m = BLOCK.exec(name);
  const depth = m ? Number(m[1]) : null;
  for (const [re, kind] of RULES) if (re.test(name)) return { kind, depth };
  return { kind: 'other', depth };
}
