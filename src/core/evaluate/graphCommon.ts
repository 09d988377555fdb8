/**
 * The pieces both transformer graphs share. Batch size is 1, so activations are 2-D [seq, d] and
 * every projection is one Gemm on the checkpoint's weight as stored (transB = 1 for [out, in]
 * Linear weights, 0 for GPT-2's Conv1D [in, out]) — no transposed copies of any weight.
 */
import { OnnxDataType, type IValueInfoProto } from '../checkpoint/onnxProto';
import type { Checkpoint } from '../checkpoint';
import { CheckpointError, throwIfAborted } from '../checkpoint/errors';
import { GraphBuilder, valueInfo } from './onnxGraph';
import { parseFactorizationMetadata, type FactorizedTensor } from '../checkpoint/safetensorsWriter';
import { factorizedLinear } from './factorizedGraph';

/** Where the graph's weights come from: the checkpoint, or an edited tensor put in its place. */
export interface WeightSource {
  /** Decoded float32 values of a tensor (dequantised), row-major. */
  read(name: string): Promise<Float32Array>;
  shape(name: string): number[];
  /**
   * When the stored checkpoint holds `name` as factors (low-rank a @ b or MPO cores, see
   * safetensorsWriter.ts) and the graph should multiply by the factors instead of the dense matrix:
   * the factorization and a reader of its factor tensors (factorizedGraph.ts emits the products).
   */
  factorization?(name: string): { f: FactorizedTensor; readFactor(factor: string): Promise<Float32Array> } | undefined;
}

/** Extra things a graph build can do and report (graphGpt2.ts / graphLlama.ts honour them). */
export interface GraphBuildOptions {
  /**
   * Add graph outputs for the residual stream: `residual.<l>` = the [seq, d] tensor entering block l
   * (l = 0 is the embedding output), and `residual.final` = the input of the final norm.
   */
  captureResiduals?: boolean;
  /** Filled in by the build: multiply-accumulates per token of every weight product (linear layers, head). */
  stats?: GraphStats;
}

export interface GraphStats {
  /** sum over the projections of their MACs per token: dense rows x cols, low-rank k (rows + cols), MPO the chain's. */
  linearMacsPerToken: number;
  /** Parameters of the weight products as the graph holds them (factors counted, not the dense matrix). */
  linearParams: number;
  /** Projections computed with factors. */
  factorizedLinears: number;
  residualOutputs: string[];
}

export function residualOutputName(layer: number | 'final'): string {
  return layer === 'final' ? 'residual.final' : `residual.${layer}`;
}

export interface WeightSourceOptions {
  /** Tensors to use instead of the stored ones (same name and shape), e.g. an ablated matrix. */
  overrides?: ReadonlyMap<string, Float32Array>;
  signal?: AbortSignal;
  /**
   * The stored checkpoint whose factorization metadata (tensor_scalpel.factorization) should be
   * computed with as factors; `ckpt` is then its densified view (factorized.ts), which the
   * architecture and any non-linear use (an embedding Gather) read.
   */
  factorSource?: Checkpoint;
}

export function checkpointWeights(ckpt: Checkpoint, opts: WeightSourceOptions = {}): WeightSource {
  return {
    shape(name) {
      const t = ckpt.get(name);
      if (!t) throw new CheckpointError(ckpt.path, 'tensor missing', { tensor: name });
      return t.shape;
    },
    async read(name) {
      throwIfAborted(opts.signal);
      const t = ckpt.get(name);
      if (!t) throw new CheckpointError(ckpt.path, 'tensor missing', { tensor: name });
      const o = opts.overrides?.get(name);
      if (o) {
        if (o.length !== t.params) throw new CheckpointError(ckpt.path, `override has ${o.length} values, the tensor ${t.params}`, { tensor: name });
        return o;
      }
      return t.read({ signal: opts.signal });
    },
    factorization: opts.factorSource ? factorizationLookup(opts.factorSource, opts) : undefined,
  };
}

/** The factorization hook of a WeightSource over a stored factorized checkpoint (overrides win: they are dense). */
function factorizationLookup(src: Checkpoint, opts: WeightSourceOptions): WeightSource['factorization'] {
  const table = parseFactorizationMetadata(src.metadata, src.path);
  return (name) => {
    const f = table.get(name);
    if (!f || opts.overrides?.has(name)) return undefined;
    return {
      f,
      readFactor: async (factor) => {
        throwIfAborted(opts.signal);
        const t = src.get(factor);
        if (!t) throw new CheckpointError(src.path, `factor of ${name} is described in the metadata but not stored`, { tensor: factor });
        return t.read({ signal: opts.signal });
      },
    };
  };
}

/** Builder plus the weights, deduplicating initializers that two roles share (a tied head). */
export class TransformerGraph {
  readonly g = new GraphBuilder();
  private readonly loaded = new Set<string>();
  readonly stats: GraphStats = { linearMacsPerToken: 0, linearParams: 0, factorizedLinears: 0, residualOutputs: [] };
  private readonly residuals: Array<{ name: string; value: string }> = [];

  constructor(readonly weights: WeightSource, readonly options: GraphBuildOptions = {}) {}

  /** Marks `value` (a [seq, d] residual-stream tensor) as graph output `residual.<layer>` when capturing. */
  residual(layer: number | 'final', value: string): void {
    if (!this.options.captureResiduals) return;
    const name = residualOutputName(layer);
    this.g.opTo(name, 'Identity', [value]);
    this.residuals.push({ name, value });
  }

  /** Graph outputs beyond `logits` (the captured residuals, [seq, d] float). */
  extraOutputs(dModel: number): IValueInfoProto[] {
    return this.residuals.map((r) => valueInfo(r.name, OnnxDataType.FLOAT, ['seq', dModel]));
  }

  /** Copies the build's statistics into the caller's object (GraphBuildOptions.stats). */
  report(): void {
    this.stats.residualOutputs = this.residuals.map((r) => r.name);
    if (this.options.stats) Object.assign(this.options.stats, this.stats);
  }

  /** The initializer of a checkpoint tensor (added once, under the tensor's own name). */
  async weight(name: string): Promise<string> {
    if (!this.loaded.has(name)) {
      this.g.floatInit(name, this.weights.shape(name), await this.weights.read(name));
      this.loaded.add(name);
    }
    return name;
  }

  /** y = x W^T + b for a [out, in] weight (transB 1), y = x W + b for [in, out] (transB 0). */
  async linear(x: string, weight: string, bias: string | undefined, layout: 'linear' | 'conv1d', hint: string): Promise<string> {
    const fz = this.weights.factorization?.(weight);
    if (fz) {
      const b = bias ? await this.weight(bias) : undefined;
      const r = await factorizedLinear(this.g, x, weight, fz.f, fz.readFactor, b, layout === 'linear' ? 'cols' : 'rows', hint);
      this.stats.linearMacsPerToken += r.macsPerToken;
      this.stats.linearParams += r.params;
      this.stats.factorizedLinears++;
      return r.output;
    }
    const [rows, cols] = this.weights.shape(weight);
    this.stats.linearMacsPerToken += rows * cols;
    if (!this.loaded.has(weight)) this.stats.linearParams += rows * cols;
    const w = await this.weight(weight);
    const inputs = [x, w];
    if (bias) inputs.push(await this.weight(bias));
    return this.g.op1('Gemm', inputs, { transB: layout === 'linear' ? 1 : 0 }, hint);
  }
}

/**
 * Graph inputs: `input_ids` int64 [1, seq] flattened to [seq]; `seqLen` the 1-element int64 [seq]
 * (for Slice ends) and the additive causal mask M[i, j] = -inf for j > i else 0, built once per run
 * from Range(0, seq) so it works for any length.
 */
export function prologue(g: GraphBuilder): { ids: string; seqLen: string; mask: string } {
  const ids = g.op1('Reshape', ['input_ids', g.int64([-1])], {}, 'ids');
  const seqLen = g.op1('Shape', ['input_ids'], { start: 1, end: 2 }, 'seq_len');
  const seqScalar = g.op1('Squeeze', [seqLen, g.int64([0])], {}, 'seq');
  const positions = g.op1('Range', [g.int64([0], []), seqScalar, g.int64([1], [])], {}, 'positions');
  const rows = g.op1('Unsqueeze', [positions, g.int64([1])], {}, 'rows');
  const cols = g.op1('Unsqueeze', [positions, g.int64([0])], {}, 'cols');
  const future = g.op1('Greater', [cols, rows], {}, 'future');
  const mask = g.op1('Where', [future, g.scalar(-Infinity, 'neg_inf'), g.scalar(0, 'zero')], {}, 'causal_mask');
  return { ids, seqLen, mask };
}

/**
 * Causal multi-head attention with grouped KV heads, per head h (KV head h / (H / Hkv), as Hugging
 * Face's repeat_kv and llama.cpp pair them):
 *   A_h = softmax(Q_h K_g^T / sqrt(d_head) + M) V_g
 * q [seq, H, dh], k and v [seq, Hkv, dh] -> [seq, H * dh]. Queries are grouped as [Hkv, H/Hkv, seq, dh]
 * so one broadcasting MatMul serves every head of a group (no copies of K and V).
 */
export function attention(g: GraphBuilder, q: string, k: string, v: string, mask: string, nHead: number, nKvHead: number, headDim: number, hint: string): string {
  const nRep = nHead / nKvHead;
  const qT = g.op1('Transpose', [q], { perm: [1, 0, 2] }, `${hint}/q_heads`); // [H, seq, dh]
  const qG = g.op1('Reshape', [qT, g.int64([nKvHead, nRep, -1, headDim])], {}, `${hint}/q_groups`);
  const kT = g.op1('Transpose', [k], { perm: [1, 2, 0] }, `${hint}/k_t`); // [Hkv, dh, seq]
  const kG = g.op1('Unsqueeze', [kT, g.int64([1])], {}, `${hint}/k_groups`);
  const vT = g.op1('Transpose', [v], { perm: [1, 0, 2] }, `${hint}/v_heads`); // [Hkv, seq, dh]
  const vG = g.op1('Unsqueeze', [vT, g.int64([1])], {}, `${hint}/v_groups`);
  const scores = g.op1('MatMul', [qG, kG], {}, `${hint}/scores`);
  const scaled = g.op1('Mul', [scores, g.scalar(1 / Math.sqrt(headDim), 'inv_sqrt_dh')], {}, `${hint}/scaled`);
  const masked = g.op1('Add', [scaled, mask], {}, `${hint}/masked`);
  const probs = g.op1('Softmax', [masked], { axis: -1 }, `${hint}/probs`);
  const ctx = g.op1('MatMul', [probs, vG], {}, `${hint}/context`); // [Hkv, nRep, seq, dh]
  const heads = g.op1('Reshape', [ctx, g.int64([nHead, -1, headDim])], {}, `${hint}/context_heads`);
  const perSeq = g.op1('Transpose', [heads], { perm: [1, 0, 2] }, `${hint}/context_seq`);
  return g.op1('Reshape', [perSeq, g.int64([-1, nHead * headDim])], {}, `${hint}/merged`);
}

/** Final [seq, vocab] -> graph output `logits` [1, seq, vocab]; returns the encoded model. */
export function finish(g: GraphBuilder, logits2d: string, vocabSize: number, graphName: string, metadata: Record<string, string>, extraOutputs: IValueInfoProto[] = []): Uint8Array {
  g.opTo('logits', 'Unsqueeze', [logits2d, g.int64([0])]);
  return g.encode({
    graphName,
    inputs: [valueInfo('input_ids', OnnxDataType.INT64, [1, 'seq'])],
    outputs: [valueInfo('logits', OnnxDataType.FLOAT, [1, 'seq', vocabSize]), ...extraOutputs],
    metadata,
  });
}
