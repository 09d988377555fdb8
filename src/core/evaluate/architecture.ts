/**
 * Which transformer a checkpoint holds and with which hyper-parameters, from its tensor names and
 * shapes, its own metadata (GGUF key/values, safetensors `__metadata__`) and a sibling config file
 * (meta.json / config.json next to the model).
 *
 * Naming schemes recognised:
 * - Hugging Face GPT-2:  [transformer.]h.N.attn.c_attn.weight, wte/wpe, ln_f, lm_head (optional: tied)
 * - GGUF GPT-2:          blk.N.attn_qkv.weight, token_embd, position_embd, output_norm, output
 * - Hugging Face Llama:  [model.]layers.N.self_attn.q_proj.weight, embed_tokens, norm, lm_head (optional)
 * - GGUF Llama:          blk.N.attn_q.weight, token_embd, output_norm, output (optional: tied)
 *
 * RoPE order. Meta's original Llama code (and llama2.c) rotates adjacent pairs (x[2i], x[2i+1]);
 * Hugging Face's conversion permutes the Q/K rows so that it can rotate halves (x[i], x[i + d/2])
 * ("rotate_half"). llama.cpp's converter undoes that permutation, so every GGUF Llama is interleaved.
 * A Hugging Face-named file is "half" unless its metadata says otherwise (the stories260k copies say
 * "interleaved ... not HF-permuted"); `ropeOrder` overrides both.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { CheckpointError, type Checkpoint } from '../checkpoint';

export type RopeOrder = 'interleaved' | 'half';
/** GELU variants: exact 0.5x(1+erf(x/sqrt 2)), or GPT-2's tanh approximation ("gelu_new"). */
export type GeluKind = 'erf' | 'tanh';

/** Options a caller (CLI flag, UI setting) can force where the file says nothing or says it wrong. */
export interface ArchitectureOptions {
  ropeOrder?: RopeOrder;
  gelu?: GeluKind;
  nHead?: number;
  nKvHead?: number;
  contextLength?: number;
  eps?: number;
  ropeBase?: number;
  /** A config file to read instead of looking for meta.json / config.json beside the model. */
  configPath?: string;
}

interface ArchitectureBase {
  nLayer: number;
  nHead: number;
  dModel: number;
  headDim: number;
  dFF: number;
  vocabSize: number;
  contextLength: number;
  /** Where contextLength came from ("gguf llama.context_length", "wpe rows", "default"...). */
  contextSource: string;
  eps: number;
}

/** Per-layer tensor names of a GPT-2 block (biases may be absent in exotic variants). */
export interface Gpt2LayerNames {
  ln1: [string, string]; qkv: [string, string | undefined]; attnOut: [string, string | undefined];
  ln2: [string, string]; fc: [string, string | undefined]; proj: [string, string | undefined];
}

export interface Gpt2Architecture extends ArchitectureBase {
  family: 'gpt2';
  naming: 'hf' | 'gguf';
  /**
   * 'linear': weights stored [out, in] (torch.nn.Linear, GGUF); 'conv1d': [in, out] (Hugging Face
   * GPT-2's Conv1D). Decided from c_attn's shape: [3d, d] is linear, [d, 3d] is Conv1D.
   */
  layout: 'linear' | 'conv1d';
  gelu: GeluKind;
  geluSource: string;
  names: { wte: string; wpe: string; lnf: [string, string]; head?: string; layers: Gpt2LayerNames[] };
}

export interface LlamaLayerNames {
  attnNorm: string; q: string; k: string; v: string; o: string;
  qBias?: string; kBias?: string; vBias?: string;
  ffnNorm: string; gate: string; up: string; down: string;
}

export interface LlamaArchitecture extends ArchitectureBase {
  family: 'llama';
  naming: 'hf' | 'gguf';
  nKvHead: number;
  ropeOrder: RopeOrder;
  ropeSource: string;
  ropeBase: number;
  names: { embed: string; norm: string; head?: string; layers: LlamaLayerNames[] };
}

export type TransformerArchitecture = Gpt2Architecture | LlamaArchitecture;

/** A config found beside the model (or given), parsed. */
export interface SidecarConfig {
  path: string;
  json: Record<string, unknown>;
}

/** Reads `configPath`, else meta.json / config.json in the model's folder; undefined when none. */
export async function readSidecarConfig(modelPath: string, configPath?: string): Promise<SidecarConfig | undefined> {
  const candidates = configPath ? [configPath] : [path.join(path.dirname(modelPath), 'meta.json'), path.join(path.dirname(modelPath), 'config.json')];
  for (const p of candidates) {
    let text: string;
    try {
      text = await fsp.readFile(p, 'utf8');
    } catch (e) {
      if (configPath) throw new CheckpointError(p, `cannot read the config: ${(e as Error).message}`);
      continue;
    }
    try {
      const json = JSON.parse(text) as unknown;
      if (json && typeof json === 'object' && !Array.isArray(json)) return { path: p, json: json as Record<string, unknown> };
      throw new Error('not a JSON object');
    } catch (e) {
      throw new CheckpointError(p, `config is not valid JSON: ${(e as Error).message}`);
    }
  }
  return undefined;
}

/**
 * A flat key -> value view over every hyper-parameter source, most specific first: the checkpoint's
 * own metadata (safetensors `__metadata__` values are strings; a "config" entry holding JSON is
 * expanded), then the sidecar's top level and its "config" object.
 */
class ConfigView {
  private readonly sources: Array<{ label: string; map: Record<string, unknown> }> = [];

  constructor(ckpt: Checkpoint, sidecar: SidecarConfig | undefined) {
    const meta = ckpt.metadata;
    this.sources.push({ label: `${ckpt.format} metadata`, map: meta });
    if (typeof meta.config === 'string') {
      try {
        const inner = JSON.parse(meta.config) as Record<string, unknown>;
        if (inner && typeof inner === 'object') this.sources.push({ label: `${ckpt.format} metadata config`, map: inner });
      } catch { /* not JSON: ignore, it is only a hint */ }
    }
    if (sidecar) {
      const base = path.basename(sidecar.path);
      if (sidecar.json.config && typeof sidecar.json.config === 'object') this.sources.push({ label: `${base} config`, map: sidecar.json.config as Record<string, unknown> });
      this.sources.push({ label: base, map: sidecar.json });
    }
  }

  /** The first numeric value among `keys` (strings of digits count), with where it came from. */
  number(keys: string[]): { value: number; source: string } | undefined {
    for (const s of this.sources) {
      for (const k of keys) {
        const v = s.map[k];
        const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
        if (Number.isFinite(n)) return { value: n, source: `${s.label} ${k}` };
      }
    }
    return undefined;
  }

  string(keys: string[]): { value: string; source: string } | undefined {
    for (const s of this.sources) {
      for (const k of keys) {
        const v = s.map[k];
        if (typeof v === 'string') return { value: v, source: `${s.label} ${k}` };
      }
    }
    return undefined;
  }

  /** True when the sidecar looks like PicoGPT's meta.json (a character vocabulary list). */
  hasCharVocab(): boolean {
    return this.sources.some((s) => Array.isArray(s.map.vocab) && (s.map.vocab as unknown[]).every((c) => typeof c === 'string' && [...c].length === 1));
  }
}

function layerCount(ckpt: Checkpoint, re: RegExp): number {
  let max = -1;
  for (const t of ckpt.tensors) {
    const m = re.exec(t.name);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

/** Looks up a tensor that must exist and have the given rank. */
function need(ckpt: Checkpoint, name: string, rank?: number): number[] {
  const t = ckpt.get(name);
  if (!t) throw new CheckpointError(ckpt.path, `expected tensor ${name} is missing`, { tensor: name });
  if (rank !== undefined && t.shape.length !== rank) throw new CheckpointError(ckpt.path, `expected a ${rank}-D tensor, found shape [${t.shape.join(', ')}]`, { tensor: name });
  return t.shape;
}

function optional(ckpt: Checkpoint, name: string): string | undefined {
  return ckpt.get(name) ? name : undefined;
}

/**
 * Recognises the architecture and reads its hyper-parameters. Throws a CheckpointError naming the
 * file and what is missing (e.g. the head count, which no tensor shape reveals).
 */
export function detectArchitecture(ckpt: Checkpoint, sidecar: SidecarConfig | undefined, opts: ArchitectureOptions = {}): TransformerArchitecture {
  const cfg = new ConfigView(ckpt, sidecar);
  const names = ckpt.tensors.map((t) => t.name);
  const find = (re: RegExp) => names.find((n) => re.test(n));

  const hfGpt2 = find(/^(.*?)h\.\d+\.attn\.c_attn\.weight$/);
  if (hfGpt2) return gpt2(ckpt, cfg, opts, 'hf', /^(.*?)h\.\d+\.attn\.c_attn\.weight$/.exec(hfGpt2)![1]);
  if (find(/^blk\.\d+\.attn_qkv\.weight$/)) return gpt2(ckpt, cfg, opts, 'gguf', '');
  const hfLlama = find(/^(.*?)layers\.\d+\.self_attn\.q_proj\.weight$/);
  if (hfLlama) return llama(ckpt, cfg, opts, 'hf', /^(.*?)layers\.\d+\.self_attn\.q_proj\.weight$/.exec(hfLlama)![1]);
  if (find(/^blk\.\d+\.attn_q\.weight$/)) return llama(ckpt, cfg, opts, 'gguf', '');
  throw new CheckpointError(ckpt.path, 'not a GPT-2 or Llama checkpoint we can build a graph for: expected tensors named h.N.attn.c_attn.weight (GPT-2), blk.N.attn_qkv.weight (GGUF GPT-2), layers.N.self_attn.q_proj.weight (Llama) or blk.N.attn_q.weight (GGUF Llama)');
}

function archPrefix(ckpt: Checkpoint, fallback: string): string {
  const a = ckpt.metadata['general.architecture'];
  return typeof a === 'string' ? a : fallback;
}

function headCount(ckpt: Checkpoint, cfg: ConfigView, opts: ArchitectureOptions, arch: string): number {
  if (opts.nHead !== undefined) return opts.nHead;
  const h = cfg.number([`${arch}.attention.head_count`, 'n_head', 'num_attention_heads', 'n_heads']);
  if (!h) throw new CheckpointError(ckpt.path, `cannot tell the number of attention heads (no ${arch}.attention.head_count / n_head / num_attention_heads in the metadata, and no meta.json or config.json beside the model): pass it as an option (nHead)`);
  return h.value;
}

function contextOf(cfg: ConfigView, opts: ArchitectureOptions, arch: string): { value: number; source: string } | undefined {
  if (opts.contextLength !== undefined) return { value: opts.contextLength, source: 'option' };
  return cfg.number([`${arch}.context_length`, 'max_position_embeddings', 'n_positions', 'n_ctx', 'block_size', 'block', 'max_seq_len']);
}

function gpt2(ckpt: Checkpoint, cfg: ConfigView, opts: ArchitectureOptions, naming: 'hf' | 'gguf', prefix: string): Gpt2Architecture {
  const arch = archPrefix(ckpt, 'gpt2');
  const hf = naming === 'hf';
  const nLayer = layerCount(ckpt, hf ? new RegExp(`^${escapeRe(prefix)}h\\.(\\d+)\\.attn\\.c_attn\\.weight$`) : /^blk\.(\d+)\.attn_qkv\.weight$/);
  const wte = hf ? `${prefix}wte.weight` : 'token_embd.weight';
  const wpe = hf ? `${prefix}wpe.weight` : 'position_embd.weight';
  const [vocabSize, dModel] = need(ckpt, wte, 2);
  const [nPos, dPos] = need(ckpt, wpe, 2);
  if (dPos !== dModel) throw new CheckpointError(ckpt.path, `position embedding width ${dPos} differs from the token embedding width ${dModel}`, { tensor: wpe });
  const layers: Gpt2LayerNames[] = [];
  for (let l = 0; l < nLayer; l++) {
    const p = hf ? `${prefix}h.${l}.` : `blk.${l}.`;
    const n = hf
      ? { ln1: 'ln_1', qkv: 'attn.c_attn', attnOut: 'attn.c_proj', ln2: 'ln_2', fc: 'mlp.c_fc', proj: 'mlp.c_proj' }
      : { ln1: 'attn_norm', qkv: 'attn_qkv', attnOut: 'attn_output', ln2: 'ffn_norm', fc: 'ffn_up', proj: 'ffn_down' };
    const lin = (k: string): [string, string | undefined] => { need(ckpt, `${p}${k}.weight`, 2); return [`${p}${k}.weight`, optional(ckpt, `${p}${k}.bias`)]; };
    const norm = (k: string): [string, string] => { need(ckpt, `${p}${k}.weight`, 1); need(ckpt, `${p}${k}.bias`, 1); return [`${p}${k}.weight`, `${p}${k}.bias`]; };
    layers.push({ ln1: norm(n.ln1), qkv: lin(n.qkv), attnOut: lin(n.attnOut), ln2: norm(n.ln2), fc: lin(n.fc), proj: lin(n.proj) });
  }
  const qkvShape = need(ckpt, layers[0].qkv[0], 2);
  let layout: 'linear' | 'conv1d';
  if (qkvShape[0] === 3 * dModel && qkvShape[1] === dModel) layout = 'linear';
  else if (qkvShape[0] === dModel && qkvShape[1] === 3 * dModel) layout = 'conv1d';
  else throw new CheckpointError(ckpt.path, `fused QKV weight has shape [${qkvShape.join(', ')}], expected [${3 * dModel}, ${dModel}] (Linear) or [${dModel}, ${3 * dModel}] (Conv1D)`, { tensor: layers[0].qkv[0] });
  const fcShape = need(ckpt, layers[0].fc[0], 2);
  const dFF = layout === 'linear' ? fcShape[0] : fcShape[1];
  const lnf: [string, string] = hf ? [`${prefix}ln_f.weight`, `${prefix}ln_f.bias`] : ['output_norm.weight', 'output_norm.bias'];
  need(ckpt, lnf[0], 1); need(ckpt, lnf[1], 1);
  const head = hf ? optional(ckpt, 'lm_head.weight') ?? optional(ckpt, `${prefix}lm_head.weight`) : optional(ckpt, 'output.weight');
  if (head) {
    const hs = need(ckpt, head, 2);
    if (hs[0] !== vocabSize || hs[1] !== dModel) throw new CheckpointError(ckpt.path, `output head has shape [${hs.join(', ')}], expected [${vocabSize}, ${dModel}]`, { tensor: head });
  }
  const nHead = headCount(ckpt, cfg, opts, arch);
  if (dModel % nHead !== 0) throw new CheckpointError(ckpt.path, `embedding width ${dModel} is not a multiple of the head count ${nHead}`);
  const ctx = contextOf(cfg, opts, arch);
  const contextLength = Math.min(ctx?.value ?? nPos, nPos);
  const eps = opts.eps ?? cfg.number([`${arch}.attention.layer_norm_epsilon`, 'layer_norm_epsilon', 'norm_eps'])?.value ?? 1e-5;
  // GELU: an explicit option, else the config's activation name, else PicoGPT's (exact erf: its
  // exported pico.onnx computes Erf), else GPT-2's own tanh approximation ("gelu_new"; ggml's gelu too).
  let gelu: GeluKind; let geluSource: string;
  const act = cfg.string(['activation_function', 'hidden_act']);
  if (opts.gelu) { gelu = opts.gelu; geluSource = 'option'; }
  else if (act) { gelu = /new|tanh|fast/.test(act.value) ? 'tanh' : 'erf'; geluSource = act.source; }
  else if (cfg.hasCharVocab() || /char/.test(String(ckpt.metadata.arch ?? '')) || /pico/i.test(String(ckpt.metadata['general.name'] ?? ''))) { gelu = 'erf'; geluSource = 'PicoGPT (character GPT trained with exact GELU)'; }
  else { gelu = 'tanh'; geluSource = 'GPT-2 default (gelu_new)'; }
  return {
    family: 'gpt2', naming, layout, nLayer, nHead, dModel, headDim: dModel / nHead, dFF, vocabSize,
    contextLength, contextSource: ctx && ctx.value <= nPos ? ctx.source : `${wpe} rows`, eps, gelu, geluSource,
    names: { wte, wpe, lnf, head, layers },
  };
}

function llama(ckpt: Checkpoint, cfg: ConfigView, opts: ArchitectureOptions, naming: 'hf' | 'gguf', prefix: string): LlamaArchitecture {
  const arch = archPrefix(ckpt, 'llama');
  const hf = naming === 'hf';
  const nLayer = layerCount(ckpt, hf ? new RegExp(`^${escapeRe(prefix)}layers\\.(\\d+)\\.self_attn\\.q_proj\\.weight$`) : /^blk\.(\d+)\.attn_q\.weight$/);
  const embed = hf ? `${prefix}embed_tokens.weight` : 'token_embd.weight';
  const norm = hf ? `${prefix}norm.weight` : 'output_norm.weight';
  const [vocabSize, dModel] = need(ckpt, embed, 2);
  need(ckpt, norm, 1);
  const layers: LlamaLayerNames[] = [];
  for (let l = 0; l < nLayer; l++) {
    const p = hf ? `${prefix}layers.${l}.` : `blk.${l}.`;
    const n = hf
      ? { attnNorm: 'input_layernorm', q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj', ffnNorm: 'post_attention_layernorm', gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj' }
      : { attnNorm: 'attn_norm', q: 'attn_q', k: 'attn_k', v: 'attn_v', o: 'attn_output', ffnNorm: 'ffn_norm', gate: 'ffn_gate', up: 'ffn_up', down: 'ffn_down' };
    const w = (k: string, rank: number) => { need(ckpt, `${p}${k}.weight`, rank); return `${p}${k}.weight`; };
    layers.push({
      attnNorm: w(n.attnNorm, 1), q: w(n.q, 2), k: w(n.k, 2), v: w(n.v, 2), o: w(n.o, 2),
      qBias: optional(ckpt, `${p}${n.q}.bias`), kBias: optional(ckpt, `${p}${n.k}.bias`), vBias: optional(ckpt, `${p}${n.v}.bias`),
      ffnNorm: w(n.ffnNorm, 1), gate: w(n.gate, 2), up: w(n.up, 2), down: w(n.down, 2),
    });
  }
  const nHead = headCount(ckpt, cfg, opts, arch);
  const qRows = need(ckpt, layers[0].q)[0];
  if (qRows % nHead !== 0) throw new CheckpointError(ckpt.path, `Q projection has ${qRows} rows, not a multiple of the head count ${nHead}`, { tensor: layers[0].q });
  const headDim = qRows / nHead;
  const kRows = need(ckpt, layers[0].k)[0];
  const nKvHead = opts.nKvHead ?? cfg.number([`${arch}.attention.head_count_kv`, 'num_key_value_heads', 'n_kv_heads'])?.value ?? kRows / headDim;
  if (nKvHead * headDim !== kRows || nHead % nKvHead !== 0) throw new CheckpointError(ckpt.path, `K projection has ${kRows} rows: expected ${nKvHead} KV heads x ${headDim}, with ${nHead} query heads a multiple of the KV heads`, { tensor: layers[0].k });
  const ropeDim = cfg.number([`${arch}.rope.dimension_count`]);
  if (ropeDim && ropeDim.value !== headDim) throw new CheckpointError(ckpt.path, `partial rotary embeddings (${ropeDim.source} = ${ropeDim.value}, head size ${headDim}) are not supported`);
  const dFF = need(ckpt, layers[0].gate)[0];
  const head = hf ? optional(ckpt, 'lm_head.weight') ?? optional(ckpt, `${prefix}lm_head.weight`) : optional(ckpt, 'output.weight');
  if (head) {
    const hs = need(ckpt, head, 2);
    if (hs[0] !== vocabSize || hs[1] !== dModel) throw new CheckpointError(ckpt.path, `output head has shape [${hs.join(', ')}], expected [${vocabSize}, ${dModel}]`, { tensor: head });
  }
  const ctx = contextOf(cfg, opts, arch);
  const eps = opts.eps ?? cfg.number([`${arch}.attention.layer_norm_rms_epsilon`, 'rms_norm_eps', 'norm_eps', 'layer_norm_epsilon'])?.value ?? 1e-5;
  const ropeBase = opts.ropeBase ?? cfg.number([`${arch}.rope.freq_base`, 'rope_theta'])?.value ?? 10000;
  let ropeOrder: RopeOrder; let ropeSource: string;
  const hint = cfg.string(['rope', 'rope_order']);
  if (opts.ropeOrder) { ropeOrder = opts.ropeOrder; ropeSource = 'option'; }
  else if (!hf) { ropeOrder = 'interleaved'; ropeSource = 'GGUF (llama.cpp stores Q/K rows in interleaved order)'; }
  else if (hint && /interleav|not hf/i.test(hint.value)) { ropeOrder = 'interleaved'; ropeSource = `${hint.source}: "${hint.value}"`; }
  else if (hint && /half|rotate|hf/i.test(hint.value)) { ropeOrder = 'half'; ropeSource = `${hint.source}: "${hint.value}"`; }
  else { ropeOrder = 'half'; ropeSource = 'Hugging Face names without a hint (rotate_half)'; }
  return {
    family: 'llama', naming, nLayer, nHead, nKvHead, headDim, dModel, dFF, vocabSize,
    contextLength: ctx?.value ?? 2048, contextSource: ctx?.source ?? 'default (2048)', eps, ropeBase, ropeOrder, ropeSource,
    names: { embed, norm, head, layers },
  };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
