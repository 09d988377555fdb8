/**
 * The edits of the tensor scalpel: directional ablation of the residual stream, removal of the top
 * singular directions, and injection of a rank-1 "virus".
 *
 * Directional ablation (Arditi et al., "Refusal in Language Models Is Mediated by a Single
 * Direction", arXiv 2406.11717, weight orthogonalisation): with a unit direction r in the residual
 * stream (d_model), every matrix that writes the residual stream is projected so that nothing it
 * writes has a component along r:
 *   output-side writer W [d_model, k] (rows index the residual stream):  W <- W - r (r^T W)
 *   embedding / Conv1D-layout writer E [k, d_model] (columns index it):   E <- E - (E r) r^T
 *   bias b [d_model]:                                                     b <- b - r (r^T b)
 * Afterwards r^T W = 0 exactly in exact arithmetic (r^T r = 1), and to float32 rounding in practice.
 *
 * Top-k removal (the "tensor scalpel"): W <- W - sum_{i<=k} s_i u_i v_i^T, the best rank-(min - k)
 * approximation's complement, i.e. the singular directions that dominate the matrix are cut out.
 *
 * Injection: W <- W + s u v^T with unit u in R^rows, v in R^cols (seeded Gaussian, normalised, or
 * given) — a rank-1 perturbation that, for s >> s_1(W), becomes W's loudest singular direction.
 */
import { CheckpointError } from '../checkpoint/errors';
import type { Checkpoint, TensorInfo } from '../checkpoint/types';
import { open } from '../checkpoint/open';
import { GaussianRng } from '../linalg/dense';
import type { LinalgBackend } from '../linalg/types';

export type WriterKind = 'attention-out' | 'mlp-out' | 'embedding' | 'position-embedding' | 'bias';

export interface ResidualWriter {
  name: string;
  kind: WriterKind;
  shape: number[];
  /**
   * Which axis of the row-major shape indexes the residual stream: 0 for W [d_model, k] (Linear
   * [out, in] weights, GGUF), 1 for E [k, d_model] (embeddings, Hugging Face GPT-2 Conv1D [in, out]).
   */
  residualAxis: 0 | 1;
}

export interface ResidualWriterReport {
  /** 'gpt2', 'llama' or 'unknown' — from the tensor names. */
  family: 'gpt2' | 'llama' | 'unknown';
  naming: 'hf' | 'gguf' | 'unknown';
  /** d_model, from the token embedding's width (or the metadata). */
  dModel: number | undefined;
  /** GPT-2: whether weights are Linear [out, in] or Hugging Face Conv1D [in, out]. */
  layout?: 'linear' | 'conv1d';
  writers: ResidualWriter[];
  /** Why some candidates were left out (shape did not match d_model, ...). */
  notes: string[];
}

type Info = Pick<TensorInfo, 'name' | 'shape'>;

/** d_model from the metadata: n_embd / hidden_size / GGUF `<arch>.embedding_length`. */
function dModelFromMetadata(meta: Record<string, unknown>): number | undefined {
  for (const [k, v] of Object.entries(meta)) {
    if (/(^|\.)(n_embd|hidden_size|d_model|embedding_length)$/.test(k)) {
      const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
      if (Number.isSafeInteger(n) && n > 0) return n;
    }
  }
  return undefined;
}

/**
 * The tensors that write the residual stream, found from the architecture's naming:
 * - GPT-2 (HF names): h.N.attn.c_proj, h.N.mlp.c_proj (weights and biases), wte, wpe. Hugging Face's
 *   Conv1D stores [in, out] while a Linear (e.g. PicoGPT's pico.safetensors) stores [out, in]: the
 *   layout is decided from c_attn's shape ([3d, d] = linear, [d, 3d] = Conv1D), else from the
 *   MLP projection's shape against d_model.
 * - Llama (HF names): layers.N.self_attn.o_proj, layers.N.mlp.down_proj (Linear [out, in]), embed_tokens.
 * - GGUF: blk.N.attn_output, blk.N.ffn_down (row-major [out, in]), token_embd, position_embd.
 * The untied output head reads the residual stream rather than writing it and is not listed; a tied
 * head is the embedding itself. Return the list for the user to confirm.
 */
export function residualWriters(ckpt: { tensors: readonly Info[]; metadata?: Record<string, unknown> }): ResidualWriterReport {
  const names = ckpt.tensors.map((t) => t.name);
  const byName = new Map(ckpt.tensors.map((t) => [t.name, t] as const));
  const notes: string[] = [];
  const has = (re: RegExp) => names.some((n) => re.test(n));
  const gguf = has(/^blk\.\d+\./) || has(/^token_embd\.weight$/);
  const gpt2 = has(/(^|\.)h\.\d+\.attn\.c_proj\./) || has(/^blk\.\d+\.attn_qkv\./) || has(/(^|\.)wte\.weight$/);
  const llama = has(/(^|\.)layers\.\d+\.self_attn\.o_proj\./) || has(/^blk\.\d+\.attn_q\./);
  const family = gpt2 ? 'gpt2' : llama ? 'llama' : 'unknown';
  const naming = gguf ? 'gguf' : family !== 'unknown' ? 'hf' : 'unknown';

  const embedding = names.find((n) => /(^|\.)(wte|embed_tokens|tok_embeddings|word_embeddings)\.weight$/.test(n) || n === 'token_embd.weight');
  let dModel: number | undefined;
  if (embedding) {
    const s = byName.get(embedding)!.shape;
    if (s.length === 2) dModel = s[1];
  }
  dModel ??= dModelFromMetadata(ckpt.metadata ?? {});

  const rules: Array<{ re: RegExp; kind: WriterKind }> = [
    { re: /(^|\.)h\.\d+\.attn\.c_proj\.(weight|bias)$/, kind: 'attention-out' },
    { re: /(^|\.)h\.\d+\.mlp\.c_proj\.(weight|bias)$/, kind: 'mlp-out' },
    { re: /(^|\.)layers\.\d+\.self_attn\.o_proj\.(weight|bias)$/, kind: 'attention-out' },
    { re: /(^|\.)layers\.\d+\.mlp\.down_proj\.(weight|bias)$/, kind: 'mlp-out' },
    { re: /^blk\.\d+\.attn_output\.(weight|bias)$/, kind: 'attention-out' },
    { re: /^blk\.\d+\.ffn_down\.(weight|bias)$/, kind: 'mlp-out' },
    { re: /(^|\.)(wte|embed_tokens|tok_embeddings|word_embeddings)\.weight$|^token_embd\.weight$/, kind: 'embedding' },
    { re: /(^|\.)(wpe|embed_positions)\.weight$|^position_embd\.weight$/, kind: 'position-embedding' },
  ];

  // GPT-2 with Hugging Face names: Linear or Conv1D?
  let layout: 'linear' | 'conv1d' | undefined;
  if (family === 'gpt2' && naming === 'hf' && dModel !== undefined) {
    const attn = ckpt.tensors.find((t) => /(^|\.)h\.\d+\.attn\.c_attn\.weight$/.test(t.name));
    const proj = ckpt.tensors.find((t) => /(^|\.)h\.\d+\.mlp\.c_proj\.weight$/.test(t.name));
    if (attn && attn.shape.length === 2 && attn.shape[0] === 3 * dModel && attn.shape[1] === dModel) layout = 'linear';
    else if (attn && attn.shape.length === 2 && attn.shape[1] === 3 * dModel && attn.shape[0] === dModel) layout = 'conv1d';
    else if (proj && proj.shape.length === 2 && proj.shape[0] === dModel && proj.shape[1] !== dModel) layout = 'linear';
    else if (proj && proj.shape.length === 2 && proj.shape[1] === dModel && proj.shape[0] !== dModel) layout = 'conv1d';
  }

  const writers: ResidualWriter[] = [];
  for (const t of ckpt.tensors) {
    const rule = rules.find((r) => r.re.test(t.name));
    if (!rule) continue;
    if (t.shape.length === 1) {
      if (dModel !== undefined && t.shape[0] !== dModel) { notes.push(`${t.name}: bias of length ${t.shape[0]} is not d_model = ${dModel}; left out`); continue; }
      writers.push({ name: t.name, kind: 'bias', shape: t.shape.slice(), residualAxis: 0 });
      continue;
    }
    if (t.shape.length !== 2) { notes.push(`${t.name}: shape [${t.shape.join(', ')}] is not a matrix; left out`); continue; }
    let axis: 0 | 1;
    if (rule.kind === 'embedding' || rule.kind === 'position-embedding') axis = 1;
    else if (layout === 'conv1d') axis = 1;
    else axis = 0;
    if (dModel !== undefined && t.shape[axis] !== dModel) {
      notes.push(`${t.name}: shape [${t.shape.join(', ')}] has no d_model = ${dModel} on the expected axis ${axis}; left out`);
      continue;
    }
    writers.push({ name: t.name, kind: rule.kind, shape: t.shape.slice(), residualAxis: axis });
  }
  if (family === 'unknown') notes.push('no known naming scheme (GPT-2, Llama, GGUF): list the writers explicitly');
  return { family, naming, dModel, ...(layout ? { layout } : {}), writers, notes };
}

/**
 * The residual axis of an explicitly named writer of a given shape, for a direction of length d:
 * the only axis of size d, or (square matrices) the detected layout's axis, else axis 0 (the Linear
 * convention). Throws naming the tensor and both dimensions when no axis has size d.
 */
export function writerAxis(name: string, shape: readonly number[], d: number, detected?: ResidualWriter): 0 | 1 {
  if (shape.length === 1) {
    if (shape[0] !== d) throw new RangeError(`tensor ${name}: length ${shape[0]} does not match the direction's d_model = ${d}`);
    return 0;
  }
  if (shape.length !== 2) throw new RangeError(`tensor ${name}: shape [${shape.join(', ')}] is not a vector or a matrix`);
  const r0 = shape[0] === d, r1 = shape[1] === d;
  if (r0 && r1) return detected?.residualAxis ?? 0;
  if (r0) return 0;
  if (r1) return 1;
  throw new RangeError(`tensor ${name}: shape [${shape.join(', ')}] has no dimension equal to the direction's d_model = ${d}`);
}

/**
 * Directional ablation in place (float64 accumulation). W is row-major [rows, cols]; `axis` is the
 * residual axis (see ResidualWriter). r must be a unit vector of length shape[axis].
 *   axis 0: p = r^T W (cols), W_ij -= r_i p_j
 *   axis 1: q = W r (rows),   W_ij -= q_i r_j
 */
export function ablateDirection(w: Float32Array, rows: number, cols: number, r: Float64Array, axis: 0 | 1, name = 'tensor'): void {
  const d = axis === 0 ? rows : cols;
  if (r.length !== d) {
    throw new RangeError(`tensor ${name}: its residual dimension (axis ${axis} of [${rows}, ${cols}]) is ${d}, the direction has ${r.length}`);
  }
  if (axis === 0) {
    const p = new Float64Array(cols);
    for (let i = 0; i < rows; i++) {
      const ri = r[i];
      if (ri === 0) continue;
      const o = i * cols;
      for (let j = 0; j < cols; j++) p[j] += ri * w[o + j];
    }
    for (let i = 0; i < rows; i++) {
      const ri = r[i];
      if (ri === 0) continue;
      const o = i * cols;
      for (let j = 0; j < cols; j++) w[o + j] -= ri * p[j];
    }
  } else {
    for (let i = 0; i < rows; i++) {
      const o = i * cols;
      let q = 0;
      for (let j = 0; j < cols; j++) q += w[o + j] * r[j];
      for (let j = 0; j < cols; j++) w[o + j] -= q * r[j];
    }
  }
}

/** ||r^T W|| (axis 0) or ||W r|| (axis 1): what directional ablation drives to zero. */
export function directionComponent(w: Float32Array, rows: number, cols: number, r: ArrayLike<number>, axis: 0 | 1): number {
  let s = 0;
  if (axis === 0) {
    const p = new Float64Array(cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) p[j] += r[i] * w[i * cols + j];
    for (let j = 0; j < cols; j++) s += p[j] * p[j];
  } else {
    for (let i = 0; i < rows; i++) {
      let q = 0;
      for (let j = 0; j < cols; j++) q += w[i * cols + j] * r[j];
      s += q * q;
    }
  }
  return Math.sqrt(s);
}

/** r / ||r|| in float64; throws on a zero or non-finite vector. */
export function normalise(v: ArrayLike<number>, what = 'vector'): Float64Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const n = Math.sqrt(s);
  if (!(n > 0) || !Number.isFinite(n)) throw new RangeError(`${what} has norm ${n}; cannot normalise it`);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] / n;
  return out;
}

/** The singular triplets removed by `removeTopDirections`. */
export interface RemovedDirections {
  singularValues: number[];
}

/**
 * W <- W - sum_{i<=k} s_i u_i v_i^T in place. The top-k triplets come from a thin SVD for matrices
 * up to 2^22 elements, else from block Lanczos with residuals ||A^T u - s v|| <= 1e-5 s_1, both
 * through `backend`. (1e-10 was asked before: float32 products cannot get there, so Lanczos always ran
 * to its cap. On a flat 2048 x 4096 top, 1e-5 gives the same three values to 1e-11 relative and the
 * same removed norm, in 0.8 s instead of 3.3 s.)
 */
export async function removeTopDirections(w: Float32Array, rows: number, cols: number, k: number, backend: LinalgBackend, signal?: AbortSignal): Promise<RemovedDirections> {
  const kk = Math.min(k, rows, cols);
  const m = { rows, cols, data: w };
  const svd = rows * cols <= 1 << 22
    ? await backend.svd(m, { signal })
    : await backend.lanczosSvd(m, kk, { signal, tolerance: 1e-5, seed: 7 });
  const Ucols = svd.U.cols;
  for (let t = 0; t < kk; t++) {
    const s = svd.S[t];
    for (let i = 0; i < rows; i++) {
      const su = s * svd.U.data[i * Ucols + t];
      const o = i * cols;
      for (let j = 0; j < cols; j++) w[o + j] -= su * svd.Vt.data[t * cols + j];
    }
  }
  return { singularValues: Array.from(svd.S.subarray(0, kk)) };
}

/** The unit vectors of an injection: given (normalised) or seeded Gaussian (u drawn first, then v). */
export function injectionVectors(rows: number, cols: number, opts: { seed?: number; u?: ArrayLike<number>; v?: ArrayLike<number> }, name = 'tensor'): { u: Float64Array; v: Float64Array } {
  if (opts.u || opts.v) {
    if (!opts.u || !opts.v) throw new RangeError(`inject into ${name}: give both u and v`);
    if (opts.u.length !== rows) throw new RangeError(`inject into ${name}: u has ${opts.u.length} entries, the tensor has ${rows} rows`);
    if (opts.v.length !== cols) throw new RangeError(`inject into ${name}: v has ${opts.v.length} entries, the tensor has ${cols} columns`);
    return { u: normalise(opts.u, 'u'), v: normalise(opts.v, 'v') };
  }
  const rng = new GaussianRng(opts.seed ?? 0);
  const u = new Float64Array(rows), v = new Float64Array(cols);
  rng.fill(u);
  rng.fill(v);
  return { u: normalise(u, 'u'), v: normalise(v, 'v') };
}

/** W <- W + s u v^T in place (u, v unit). */
export function injectRankOne(w: Float32Array, rows: number, cols: number, strength: number, u: Float64Array, v: Float64Array): void {
  for (let i = 0; i < rows; i++) {
    const su = strength * u[i];
    const o = i * cols;
    for (let j = 0; j < cols; j++) w[o + j] += su * v[j];
  }
}

/**
 * Loads a direction vector from .npy / .npz / .safetensors / .pt (anything `open()` reads): the
 * tensor named `key`, or the only tensor of the file. Accepts [d], [1, d] and [d, 1]. Returns the
 * unit vector (float64) and the raw norm.
 */
export async function loadDirection(file: string, key?: string): Promise<{ r: Float64Array; norm: number; tensor: string; file: string }> {
  let ckpt: Checkpoint;
  try {
    ckpt = await open(file);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(file, `cannot open the direction file: ${(e as Error).message}`, { cause: e });
  }
  try {
    let t = key !== undefined ? ckpt.get(key) : undefined;
    if (key !== undefined && !t) {
      throw new CheckpointError(file, `no tensor named ${JSON.stringify(key)}; the file holds ${ckpt.tensors.map((x) => x.name).join(', ')}`);
    }
    if (!t) {
      if (ckpt.tensors.length !== 1) {
        throw new CheckpointError(file, `holds ${ckpt.tensors.length} tensors (${ckpt.tensors.slice(0, 8).map((x) => x.name).join(', ')}${ckpt.tensors.length > 8 ? ', ...' : ''}); pick the direction with a key`);
      }
      t = ckpt.tensors[0];
    }
    const s = t.shape;
    const ok = s.length === 1 || (s.length === 2 && (s[0] === 1 || s[1] === 1));
    if (!ok || t.params < 1) {
      throw new CheckpointError(file, `direction must have shape [d], [1, d] or [d, 1], got [${s.join(', ')}]`, { tensor: t.name });
    }
    const values = await t.read();
    let n = 0;
    for (let i = 0; i < values.length; i++) n += values[i] * values[i];
    n = Math.sqrt(n);
    if (!(n > 0) || !Number.isFinite(n)) throw new CheckpointError(file, `direction has norm ${n}; expected a non-zero finite vector`, { tensor: t.name });
    return { r: normalise(values), norm: n, tensor: t.name, file };
  } finally {
    await ckpt.close();
  }
}
