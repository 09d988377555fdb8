/**
 * A runnable language model: an onnxruntime-node session over either a graph we build from a
 * checkpoint (GPT-2 / Llama families, weights dequantised to float32) or an ONNX file run as it is,
 * plus its tokenizer and context length. `logits(ids)` returns the next-token logits of every
 * position, row-major [ids.length, vocab].
 */
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { CheckpointError, open, type Checkpoint, type TensorEntry } from '../checkpoint';
import { detectArchitecture, readSidecarConfig, type ArchitectureOptions, type SidecarConfig, type TransformerArchitecture } from './architecture';
import { buildGraph } from './graph';
import type { GraphStats } from './graphCommon';
import { parseFactorizationMetadata } from '../checkpoint/safetensorsWriter';
import { densifyFactorized } from './factorized';
import { loadTokenizer, type Tokenizer } from './tokenizer';
import { MAX_ROPE_POSITIONS } from './graphLlama';

export interface LoadModelOptions extends ArchitectureOptions {
  /** A vocabulary to use instead of the model's own (meta.json, vocab.json or a GGUF file). */
  vocabPath?: string;
  /** Edited tensors to put in place of the stored ones (graph-built models only). */
  overrides?: ReadonlyMap<string, Float32Array>;
  /**
   * Add the residual stream as graph outputs (`residual.<l>`, `residual.final`; graph-built models
   * only), read with `LanguageModel.run` (activations.ts).
   */
  captureResiduals?: boolean;
  /**
   * Factorized checkpoints (tensor_scalpel.factorization metadata): false (default) computes with the
   * factors (factorizedGraph.ts); true contracts them back to dense matrices first.
   */
  densify?: boolean;
  /** onnxruntime intra-op threads (default 1: these models are tiny, and the machine is shared). */
  threads?: number;
  signal?: AbortSignal;
}

export interface LanguageModel {
  readonly path: string;
  /** 'graph': built from the checkpoint by us; 'onnx': an ONNX file run as it is. */
  readonly kind: 'graph' | 'onnx';
  readonly architecture?: TransformerArchitecture;
  readonly vocabSize: number;
  /** Longest input `logits` accepts. */
  readonly contextLength: number;
  readonly contextSource: string;
  /** Undefined when the model carries none and none was given: see `tokenizerError`. */
  readonly tokenizer?: Tokenizer;
  readonly tokenizerError?: Error;
  /** Size of the ONNX model bytes we built (graph models). */
  readonly graphBytes?: number;
  /** What the built graph computes per token and holds (graph models). */
  readonly graphStats?: GraphStats;
  logits(ids: readonly number[]): Promise<Float32Array>;
  /** Runs the graph and returns the named outputs' values (e.g. `residual.3`), row-major. */
  run?(ids: readonly number[], outputs: readonly string[]): Promise<Record<string, Float32Array>>;
  close(): Promise<void>;
}

/** The model's tokenizer, or the loader's clear error ("<file> has no tokenizer: pass --vocab ..."). */
export function requireTokenizer(model: LanguageModel): Tokenizer {
  if (model.tokenizer) return model.tokenizer;
  throw model.tokenizerError ?? new CheckpointError(model.path, 'has no tokenizer');
}

function sessionOptions(threads: number | undefined): ort.InferenceSession.SessionOptions {
  return { intraOpNumThreads: threads ?? 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' };
}

class OrtLanguageModel implements LanguageModel {
  constructor(
    readonly path: string,
    readonly kind: 'graph' | 'onnx',
    private readonly session: ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
    private readonly extraInputs: Array<'attention_mask' | 'position_ids'>,
    readonly vocabSize: number,
    readonly contextLength: number,
    readonly contextSource: string,
    readonly tokenizer: Tokenizer | undefined,
    readonly tokenizerError: Error | undefined,
    readonly architecture?: TransformerArchitecture,
    readonly graphBytes?: number,
    readonly graphStats?: GraphStats,
  ) {}

  async logits(ids: readonly number[]): Promise<Float32Array> {
    const n = ids.length;
    const t = (await this.session.run(this.feeds(ids), [this.outputName]))[this.outputName];
    const expected = n * this.vocabSize;
    if (t.type !== 'float32' || t.size !== expected) throw new Error(`${this.path}: output ${this.outputName} has ${t.size} ${t.type} values, expected ${expected} float32 ([1, ${n}, ${this.vocabSize}])`);
    return t.data as Float32Array;
  }

  async run(ids: readonly number[], outputs: readonly string[]): Promise<Record<string, Float32Array>> {
    for (const o of outputs) {
      if (!this.session.outputNames.includes(o)) throw new RangeError(`${path.basename(this.path)}: the graph has no output ${o} (outputs: ${this.session.outputNames.join(', ')}); residuals need loadModel(..., { captureResiduals: true })`);
    }
    const res = await this.session.run(this.feeds(ids), [...outputs]);
    const out: Record<string, Float32Array> = {};
    for (const o of outputs) {
      if (res[o].type !== 'float32') throw new Error(`${this.path}: output ${o} is ${res[o].type}, expected float32`);
      out[o] = res[o].data as Float32Array;
    }
    return out;
  }

  private feeds(ids: readonly number[]): Record<string, ort.Tensor> {
    const n = ids.length;
    if (n === 0) throw new RangeError('logits: empty input');
    if (n > this.contextLength) throw new RangeError(`logits: ${n} tokens exceed the context length ${this.contextLength} of ${path.basename(this.path)}`);
    const data = new BigInt64Array(n);
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`logits: token id ${id} at position ${i} is outside the vocabulary [0, ${this.vocabSize})`);
      data[i] = BigInt(id);
    }
    const feeds: Record<string, ort.Tensor> = { [this.inputName]: new ort.Tensor('int64', data, [1, n]) };
    for (const extra of this.extraInputs) {
      const v = new BigInt64Array(n);
      for (let i = 0; i < n; i++) v[i] = extra === 'attention_mask' ? 1n : BigInt(i);
      feeds[extra] = new ort.Tensor('int64', v, [1, n]);
    }
    return feeds;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Opens a model for evaluation. An .onnx file runs as it is (input `input_ids` or its one integer
 * input; output `logits` or its first); any other checkpoint is turned into a graph by buildGraph.
 */
export async function loadModel(modelPath: string, opts: LoadModelOptions = {}): Promise<LanguageModel> {
  const abs = path.resolve(modelPath);
  const raw = await open(abs);
  let ckpt: Checkpoint;
  try {
    ckpt = densifyFactorized(raw);
  } catch (e) {
    await raw.close();
    throw e;
  }
  try {
    const sidecar = await readSidecarConfig(abs, opts.configPath);
    let tokenizer: Tokenizer | undefined;
    let tokenizerError: Error | undefined;
    try {
      tokenizer = await loadTokenizer(abs, ckpt, { vocabPath: opts.vocabPath });
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      tokenizerError = e;
    }
    if (ckpt.format === 'onnx') return await loadOnnxAsIs(abs, ckpt, sidecar, tokenizer, tokenizerError, opts);
    const arch = detectArchitecture(ckpt, sidecar, opts);
    const stats = {} as GraphStats;
    const factorSource = !opts.densify && parseFactorizationMetadata(raw.metadata, raw.path).size > 0 ? raw : undefined;
    const bytes = await buildGraph(ckpt, arch, { overrides: opts.overrides, signal: opts.signal, factorSource, captureResiduals: opts.captureResiduals, stats });
    const session = await ort.InferenceSession.create(bytes, sessionOptions(opts.threads));
    const ctx = arch.family === 'llama' ? Math.min(arch.contextLength, MAX_ROPE_POSITIONS) : arch.contextLength;
    if (tokenizer && tokenizer.vocabSize > arch.vocabSize) tokenizerError = mismatch(abs, tokenizer, arch.vocabSize);
    return new OrtLanguageModel(abs, 'graph', session, 'input_ids', 'logits', [], arch.vocabSize, ctx, arch.contextSource,
      tokenizerError ? undefined : tokenizer, tokenizerError, arch, bytes.byteLength, stats);
  } finally {
    await ckpt.close();
  }
}

function mismatch(file: string, tok: Tokenizer, vocab: number): CheckpointError {
  return new CheckpointError(file, `the tokenizer (${tok.source}) has ${tok.vocabSize} tokens but the model's vocabulary has ${vocab}: pass --vocab with the model's own vocabulary`);
}

async function loadOnnxAsIs(abs: string, ckpt: Checkpoint, sidecar: SidecarConfig | undefined, tokenizer: Tokenizer | undefined, tokenizerError: Error | undefined, opts: LoadModelOptions): Promise<LanguageModel> {
  if (opts.overrides && opts.overrides.size > 0) throw new CheckpointError(abs, 'tensor overrides need a graph built from the checkpoint; an ONNX file runs as it is');
  const session = await ort.InferenceSession.create(abs, sessionOptions(opts.threads));
  try {
    const ints = session.inputMetadata.filter((m) => m.isTensor && (m.type === 'int64' || m.type === 'int32'));
    const input = session.inputNames.includes('input_ids') ? 'input_ids' : ints.length >= 1 ? ints[0].name : undefined;
    if (!input) throw new CheckpointError(abs, `no integer token input among the model inputs (${session.inputNames.join(', ')}); expected input_ids int64 [batch, seq]`);
    const extras: Array<'attention_mask' | 'position_ids'> = [];
    for (const name of session.inputNames) {
      if (name === input) continue;
      if (name === 'attention_mask' || name === 'position_ids') extras.push(name);
      else throw new CheckpointError(abs, `model input ${name} is not one we can feed (input_ids, attention_mask, position_ids)`);
    }
    const output = session.outputNames.includes('logits') ? 'logits' : session.outputNames[0];
    const meta = session.outputMetadata.find((m) => m.name === output);
    const last = meta && meta.isTensor ? meta.shape[meta.shape.length - 1] : undefined;
    let vocabSize = typeof last === 'number' && last > 0 ? last : undefined;
    if (vocabSize === undefined) {
      // Symbolic vocabulary dimension: ask the model once.
      const probe = await session.run({ [input]: new ort.Tensor('int64', new BigInt64Array(1), [1, 1]) }, [output]);
      vocabSize = probe[output].size;
    }
    const ctx = await onnxContext(ckpt, sidecar, opts);
    if (tokenizer && tokenizer.vocabSize > vocabSize) { tokenizerError = mismatch(abs, tokenizer, vocabSize); tokenizer = undefined; }
    return new OrtLanguageModel(abs, 'onnx', session, input, output, extras, vocabSize, ctx.value, ctx.source, tokenizer, tokenizerError);
  } catch (e) {
    await session.release();
    throw e;
  }
}

/**
 * An ONNX file does not state its context length. In order: the option; the sidecar config
 * (block / n_positions / max_position_embeddings ...); the rows of a position-embedding table
 * (wpe / position_embd); the size of the largest square causal-mask constant ([N, N] or [1, 1, N, N],
 * which exporters bake in at the traced maximum); else 2048.
 */
async function onnxContext(ckpt: Checkpoint, sidecar: SidecarConfig | undefined, opts: LoadModelOptions): Promise<{ value: number; source: string }> {
  if (opts.contextLength) return { value: opts.contextLength, source: 'option' };
  const cfgs = sidecar ? [sidecar.json.config, sidecar.json] : [];
  for (const c of cfgs) {
    if (!c || typeof c !== 'object') continue;
    for (const k of ['block', 'block_size', 'n_positions', 'n_ctx', 'max_position_embeddings', 'max_seq_len', 'context_length']) {
      const v = (c as Record<string, unknown>)[k];
      if (typeof v === 'number' && v > 0) return { value: v, source: `${path.basename(sidecar!.path)} ${k}` };
    }
  }
  const pos = ckpt.tensors.find((t) => /(^|[._])(wpe|position_embd|embed_positions)([._]|$)/.test(t.name) && t.shape.length === 2);
  if (pos) return { value: pos.shape[0], source: `${pos.name} rows` };
  for (const t of ckpt.tensors) {
    const s = t.shape;
    const n = s.length === 2 ? s[0] : s.length === 4 && s[0] === 1 && s[1] === 1 ? s[2] : 0;
    if (n < 8 || s[s.length - 1] !== n || n * n > 1 << 24) continue;
    if (await isCausalMask(t, n)) return { value: n, source: `causal-mask constant ${t.name}` };
  }
  return { value: 2048, source: 'default (2048)' };
}

/** True when the N x N values are constant above the diagonal and a different constant on and below it. */
async function isCausalMask(t: TensorEntry, n: number): Promise<boolean> {
  let v: Float32Array;
  try {
    v = await t.read();
  } catch {
    return false; // an undecodable constant (strings, 4-bit ...) is no mask
  }
  const above = v[1], below = v[0];
  if (Object.is(above, below)) return false;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (!Object.is(v[i * n + j], j > i ? above : below)) return false;
    }
  }
  return true;
}
