/**
 * ONNX writer: the input model with chosen initializers replaced — densely (new values, same dtype),
 * or factorized so the model computes with the factors and runs with fewer FLOPs.
 *
 * Orientation convention (the one rule every replacement follows): a replacement always describes
 * the initializer's OWN stored matrix W [rows, cols] (row-major, exactly as `Checkpoint.get(name)
 * .read()` returns it), never the PyTorch Linear weight it may be the transpose of. pico.onnx stores
 * Linear weights transposed as `onnx::MatMul_NNN` [in, out] and computes y = x @ W, so there
 * rows = in_features, cols = out_features. How the model consumes W is worked out from the graph:
 *   - dense:   W' (rows x cols values); stored with W's dtype (F32, F16, BF16 or F64).
 *   - lowrank: W ~= a @ b, a [rows, k], b [k, cols].
 *   - mpo:     W[r, c] = sum_{a} G_1[0, o_1, i_1, a_1] G_2[a_1, o_2, i_2, a_2] ... G_N[a_{N-1}, o_N, i_N, 0],
 *              cores G_k of shape coreShapes[k] = (chi_{k-1}, o_k, i_k, chi_k) (row-major Float32Arrays,
 *              as decomposeMpo's MpoCore.data / .shape), r the mixed-radix number
 *              of (o_1..o_N) (o_1 most significant), c of (i_1..i_N); prod o >= rows, prod i >= cols
 *              (excess = zero padding, cropped). This is mpo.ts's convention applied to the stored
 *              matrix: outFactors split the ROWS of W, inFactors its COLUMNS — for pico's [in, out]
 *              MatMul weights the "out" factors therefore split the Linear layer's input features.
 *
 * How factorized weights are wired in (each consumer of W in the main graph, by op):
 *   MatMul(x, W)        y = x @ W  ->  (x @ a) @ b;  MPO: x's last axis (rows) reshaped to (o_1..o_N)
 *                       and contracted site by site (see `mpoChain`), giving x @ W_mpo exactly.
 *   MatMul(W, x)        y = W @ x  ->  a @ (b @ x)  (low-rank only).
 *   Transpose(W) -> T   with perm [1, 0], when every use of T is MatMul(x, T): y = x @ W^T =
 *     MatMul(x, T)      (x @ b^T) @ a^T, or the MPO contracted against W's columns; the Transpose is
 *                       removed (Llama-style exports such as stories260K.onnx store W [out, in] so).
 *   Gemm(A, W, C)       Y = alpha A' B' + beta C with A' = A or A^T (transA), B' = W (transB = 0) or
 *                       W^T (transB = 1): A' @ W = (A' @ a) @ b, A' @ W^T = (A' @ b^T) @ a^T; MPO
 *                       contracts A' against the rows (transB = 0) or the columns (transB = 1) of
 *                       W; then alpha (Mul) and beta C (Mul, Add) as separate nodes.
 *   anything else       (Gather, other Transposes, W as Gemm's A or C, outer-scope use in a subgraph,
 *                       a graph output): that consumer keeps the ORIGINAL initializer, unchanged,
 *                       and the result says so (`keptOriginal`, each consumer's `reason`). The
 *                       factors are written when at least one consumer was rewritten to use them.
 * New initializers follow the safetensors writer's names: `<W>.lowrank.a`, `<W>.lowrank.b`,
 * `<W>.mpo.core.<k>` (k = 1..N, 4-D [chi_{k-1}, o_k, i_k, chi_k]), stored in W's dtype; the model gets
 * a `tensor_scalpel.factorization` metadata entry in the same JSON as safetensorsWriter.ts.
 *
 * The MPO chain uses only MatMul and free Reshapes on activations (no Transpose of activations: a
 * generic 5-D Transpose made the first version of this chain 10x slower than dense in onnxruntime),
 * in the site order with fewer multiply-accumulates (`mpoContractionMacs`). Note that an MPO with
 * few parameters can still need more MACs than the dense product; the result reports `macsPerRow`.
 *
 * Streaming: the input's protobuf is walked (ModelProto and the main GraphProto field by field);
 * every field that does not change — nodes, untouched initializers, value infos — is copied as its
 * stored bytes, tensor data straight from its byte range (the reader's TensorEntry byteOffset /
 * byteLength, in the model or its external data file), never decoded and re-encoded.
 *
 * External data (ONNX "External Data" spec): used when asked, or automatically when the model would
 * pass protobuf's 2 GB limit. One `<target>.data` file beside the model; each tensor of at least
 * `externalThreshold` bytes whose data is raw (or was external) goes there at an offset aligned to
 * `externalAlignment` (default 4096, the page size, so runtimes can mmap it), with `location` = the
 * data file's base name (relative, as the spec requires). Tensors held in typed fields
 * (float_data, ...) and Constant nodes stay inside the model as they were.
 *
 * Atomic: both files go through temporary files beside the targets (atomicWrite.ts), the data file
 * is renamed before the model, and a failure or cancellation deletes both. The target may not be any
 * file of the input (the model or its external data).
 */
import * as nodePath from 'node:path';
import * as os from 'node:os';
import type { Checkpoint, TensorEntry } from './types';
import { CheckpointError, formatBytes, throwIfAborted } from './errors';
import { FileAccessor } from './fileAccessor';
import { openOnnx } from './onnx';
import {
  NodeProtoType, OperatorSetIdProtoType, StringStringEntryProtoType, TensorProtoType, ValueInfoProtoType, OnnxDataType, OnnxDataLocation,
  encodeMessage, decodeMessage, onnxElementType, type INodeProto, type IAttributeProto, type ITensorProto,
} from './onnxProto';
import { withAtomicOutputs, type BufferedFileWriter } from './atomicWrite';
import {
  encodeHalfChunk, lowRankTensorNames, mpoCoreName, lowRankFactorization, mpoFactorization,
  factorizationMetadataValue, FACTORIZATION_METADATA_KEY, type FactorizedTensor,
} from './safetensorsWriter';

// ---------------------------------------------------------------------------------------------
// Public API

/** New values for the stored matrix (same element count as the initializer). */
export interface DenseReplacement { kind: 'dense'; data: Float32Array }
/** W [rows, cols] ~= a [rows, k] @ b [k, cols]. */
export interface LowRankReplacement { kind: 'lowrank'; a: Float32Array; b: Float32Array }
/** W [rows, cols] as an MPO over rows = (o_1..o_N), cols = (i_1..i_N); see the file comment. */
export interface MpoReplacement {
  kind: 'mpo';
  cores: Float32Array[];
  /** (chi_{k-1}, o_k, i_k, chi_k) per site, chi_0 = chi_N = 1. */
  coreShapes: Array<[number, number, number, number]>;
  outFactors: number[];
  inFactors: number[];
  /** Site order of the contraction in the graph; 'auto' (default) takes the one with fewer MACs (mpoContractionMacs). */
  order?: 'auto' | MpoContractionOrder;
}
export type OnnxReplacement = DenseReplacement | LowRankReplacement | MpoReplacement;

export interface OnnxWriteOptions {
  /** Initializer name (as the reader lists it) -> its replacement. */
  replacements: Map<string, OnnxReplacement> | Record<string, OnnxReplacement>;
  /** model.metadata_props entries to set (e.g. tensor_scalpel.recipe, tensor_scalpel.source); same keys are replaced. */
  metadata?: Record<string, string>;
  /** true: external data; false: everything inside the .onnx (fails beyond 2 GB); 'auto' (default): external only beyond 2 GB. */
  externalData?: boolean | 'auto';
  /** Byte alignment of each tensor's offset in the data file (default 4096). */
  externalAlignment?: number;
  /** Tensors smaller than this many bytes stay inside the model (default 1024, as onnx's own converter). */
  externalThreshold?: number;
  /** The largest .onnx written without external data under 'auto' (default 2^31 - 1, protobuf's limit; lower it to test the switch). */
  inlineLimitBytes?: number;
  signal?: AbortSignal;
  onProgress?: (p: { bytesWritten: number; totalBytes: number }) => void;
}

export interface OnnxConsumerReport {
  node: string;
  opType: string;
  inputIndex: number;
  /** true: rewritten to use the factors; false: it still reads the original initializer. */
  rewritten: boolean;
  reason?: string;
}

export interface OnnxReplacementReport {
  name: string;
  kind: OnnxReplacement['kind'];
  shape: [number, number] | number[];
  dtype: string;
  /** The initializers now holding it (the original name for dense). */
  tensors: string[];
  consumers: OnnxConsumerReport[];
  /** Factorized but some consumer (or a graph output / subgraph) still needs the original: it was kept unchanged. */
  keptOriginal: boolean;
  /** Parameters before (rows x cols) and of the factors. */
  denseParams: number;
  factorParams: number;
  /**
   * Multiply-accumulates per row of the activation for the rewritten product (dense: rows x cols;
   * low-rank: k (rows + cols); MPO: mpoContractionMacs of the order used, the larger if consumers
   * differ); 0 when nothing was rewritten.
   */
  macsPerRow: number;
}

export interface OnnxWriteResult {
  /** Final paths written: the model, then the data file if any. */
  files: string[];
  model: string;
  externalData?: string;
  replacements: OnnxReplacementReport[];
  nodes: { before: number; after: number };
  /** Elements over all main-graph initializers, before and after. */
  parameters: { before: number; after: number };
  bytesWritten: number;
}

/** The metadata key written with a factorization description (same as the safetensors writer). */
export { FACTORIZATION_METADATA_KEY };

/** protobuf messages must stay below 2 GiB (the reference parsers use int32 sizes). */
const PROTOBUF_LIMIT = 2 ** 31 - 1;
const COPY_CHUNK = 4 * 1024 * 1024;
const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/**
 * Writes `target` (+ `<target>.data` with external data) from the ONNX model `input` with the given
 * initializers replaced. See the file comment for the conventions. Throws CheckpointError for bad
 * input (unknown initializer, wrong sizes, unsupported dtype, target = input) before writing anything.
 */
export async function writeOnnx(input: string, target: string, opts: OnnxWriteOptions): Promise<OnnxWriteResult> {
  const absIn = nodePath.resolve(input);
  const absOut = nodePath.resolve(target);
  if (absIn === absOut) throw new CheckpointError(absOut, 'the output path is the input model; choose another output path (the input is never overwritten)');
  throwIfAborted(opts.signal);
  const ckpt = await openOnnx(absIn);
  const readers = new Map<string, FileAccessor>();
  try {
    const scan = await scanModel(absIn);
    const plan = planRewrite(ckpt, scan, opts);
    const dataName = `${nodePath.basename(absOut)}.data`;
    const layout = layoutOutput(ckpt, scan, plan, opts, dataName);
    const targets = layout.external ? [nodePath.join(nodePath.dirname(absOut), dataName), absOut] : [absOut];
    const totalBytes = layout.modelLength + (layout.external ? layout.dataLength : 0);
    let bytesWritten = 0;
    const emit = async (out: BufferedFileWriter, pieces: Piece[]) => {
      for (const p of pieces) {
        throwIfAborted(opts.signal);
        if (p.kind === 'bytes') { await out.write(p.data); bytesWritten += p.data.byteLength; continue; }
        if (p.kind === 'pad') { await out.fill(p.length); bytesWritten += p.length; continue; }
        if (p.kind === 'lazy') {
          const b = await p.produce();
          if (b.byteLength !== p.length) throw new CheckpointError(absOut, `internal: ${p.what} produced ${formatBytes(b.byteLength)} bytes, planned ${formatBytes(p.length)}`);
          await out.write(b);
          bytesWritten += b.byteLength;
        } else {
          let fa = readers.get(p.path);
          if (!fa) { fa = await FileAccessor.open(p.path); readers.set(p.path, fa); }
          for (let done = 0; done < p.length; done += COPY_CHUNK) {
            const n = Math.min(COPY_CHUNK, p.length - done);
            await out.write(await fa.read(p.offset + done, n, p.what, { signal: opts.signal }));
            bytesWritten += n;
          }
        }
        opts.onProgress?.({ bytesWritten, totalBytes });
      }
    };
    await withAtomicOutputs(targets, ckpt.files, async (set) => {
      let i = 0;
      if (layout.external) {
        const w = await set.open(i);
        await emit(w, layout.dataPieces);
        if (w.position !== layout.dataLength) throw new CheckpointError(targets[i], `internal: wrote ${w.position} bytes of external data, planned ${layout.dataLength}`);
        await set.finish(i++);
      }
      const w = await set.open(i);
      await emit(w, layout.modelPieces);
      if (w.position !== layout.modelLength) throw new CheckpointError(absOut, `internal: wrote ${w.position} bytes, planned ${layout.modelLength}`);
      await set.finish(i);
    }, { signal: opts.signal });
    return {
      files: targets.slice().reverse(),
      model: absOut,
      ...(layout.external ? { externalData: targets[0] } : {}),
      replacements: plan.reports,
      nodes: { before: scan.graph.nodes.length, after: plan.nodeCountAfter },
      parameters: plan.parameters,
      bytesWritten,
    };
  } finally {
    for (const fa of readers.values()) await fa.close().catch(() => undefined);
    await ckpt.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Wire format helpers (protobuf encoding spec: tag = field << 3 | wire type; 0 varint, 1 fixed64,
// 2 length-delimited, 5 fixed32).

const WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5;

/** Base-128 varint of a non-negative safe integer (7 bits per byte, low group first). */
function varintBytes(n: number): Uint8Array {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) { out.push((v % 0x80) | 0x80); v = Math.floor(v / 0x80); }
  out.push(v);
  return Uint8Array.from(out);
}
/** Tag + length prefix of a length-delimited field of `len` payload bytes. */
function lenPrefix(field: number, len: number): Uint8Array {
  const t = varintBytes(field * 8 + WIRE_LEN);
  const l = varintBytes(len);
  const out = new Uint8Array(t.length + l.length);
  out.set(t); out.set(l, t.length);
  return out;
}
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.byteLength; }
  return out;
}

/** A field's byte span: [start, end) covers tag and value; payload = value start (after the length for LEN). */
interface Span { field: number; wire: number; start: number; payload: number; end: number }

/** Positional reads over the model file: the whole file when small, else a sliding window. */
class WireFile {
  private buf: Uint8Array = new Uint8Array(0);
  private base = 0;
  private constructor(readonly fa: FileAccessor, private readonly window: number) {}

  static async open(path: string): Promise<WireFile> {
    const fa = await FileAccessor.open(path);
    const w = new WireFile(fa, 1024 * 1024);
    if (fa.size <= 64 * 1024 * 1024) { w.buf = await fa.read(0, fa.size, 'ONNX model'); w.base = 0; }
    return w;
  }
  get size(): number { return this.fa.size; }

  /** The bytes [pos, pos + len) clipped to the file (a view; copy before keeping). */
  async view(pos: number, len: number): Promise<Uint8Array> {
    const want = Math.max(0, Math.min(len, this.size - pos));
    if (pos < this.base || pos + want > this.base + this.buf.length) {
      this.buf = await this.fa.read(pos, Math.min(this.size - pos, Math.max(want, this.window)), 'ONNX protobuf');
      this.base = pos;
    }
    return this.buf.subarray(pos - this.base, pos - this.base + want);
  }

  fail(message: string, offset: number, tensor?: string): never {
    throw new CheckpointError(this.fa.path, `ONNX: ${message}`, { offset, tensor });
  }

  async varint(pos: number, end: number): Promise<{ value: number; next: number }> {
    const b = await this.view(pos, Math.min(10, end - pos));
    let value = 0, mul = 1;
    for (let k = 0; k < b.length; k++) {
      value += (b[k] & 0x7f) * mul;
      mul *= 128;
      if (b[k] < 0x80) return { value, next: pos + k + 1 };
    }
    return this.fail('truncated or malformed varint', pos);
  }

  /** Every field of the message occupying [start, end). */
  async fields(start: number, end: number, what: string): Promise<Span[]> {
    const out: Span[] = [];
    let pos = start;
    while (pos < end) {
      const t = await this.varint(pos, end);
      const field = Math.floor(t.value / 8), wire = t.value % 8;
      if (field === 0) this.fail(`${what}: invalid field number 0`, pos);
      let payload = t.next, next: number;
      switch (wire) {
        case WIRE_VARINT: next = (await this.varint(t.next, end)).next; break;
        case WIRE_I64: next = t.next + 8; break;
        case WIRE_I32: next = t.next + 4; break;
        case WIRE_LEN: { const l = await this.varint(t.next, end); payload = l.next; next = l.next + l.value; break; }
        default: return this.fail(`${what}: unsupported wire type ${wire} for field ${field}`, pos);
      }
      if (next > end) this.fail(`${what}: field ${field} runs past the end of its message (byte ${formatBytes(end)})`, pos);
      out.push({ field, wire, start: pos, payload, end: next });
      pos = next;
    }
    return out;
  }

  async bytes(s: { start: number; end: number }): Promise<Uint8Array> {
    return (await this.view(s.start, s.end - s.start)).slice();
  }
  async string(s: Span): Promise<string> {
    return new TextDecoder().decode(await this.view(s.payload, s.end - s.payload));
  }
  async close(): Promise<void> { await this.fa.close(); }
}

// ---------------------------------------------------------------------------------------------
// Scanning the model (the main graph in detail, subgraphs only for the names they reference).

interface ScannedAttr { name: string; f?: number; i?: number; ints: number[] }
interface ScannedNode { span: Span; name: string; opType: string; domain: string; inputs: string[]; outputs: string[]; attrs: ScannedAttr[] }
interface ScannedTensor {
  span: Span;
  name: string;
  /** Spans of every field that is not data (name, dims, data_type, doc_string, metadata_props...). */
  headerSpans: Span[];
  /** Data held in typed fields / string_data / a segment: such tensors are copied as they are. */
  typedOrOther: boolean;
  external: boolean;
}
interface GraphScan {
  fields: Span[];
  nodes: ScannedNode[];
  nodeBySpan: Map<number, number>;
  initializers: ScannedTensor[];
  initBySpan: Map<number, number>;
  /** Names of graph inputs / outputs / value_info entries by span start. */
  valueInfoName: Map<number, string>;
  outputs: Set<string>;
  /** Every name referenced by a node inside any subgraph (outer-scope uses). */
  subgraphRefs: Set<string>;
}
interface ModelScan {
  fields: Span[];
  graphSpan: Span;
  graph: GraphScan;
  irVersion: number;
  opset: number;
  /** metadata_props keys by span start. */
  metadataKey: Map<number, string>;
}

const DATA_FIELDS = new Set([3 /* segment */, 4, 5, 6, 7, 9 /* raw_data */, 10, 11, 13 /* external_data */, 14 /* data_location */]);

async function scanModel(path: string): Promise<ModelScan> {
  const w = await WireFile.open(path);
  try {
    const fields = await w.fields(0, w.size, 'ModelProto');
    let graphSpan: Span | undefined;
    let irVersion = 0, opset = 0;
    const metadataKey = new Map<number, string>();
    for (const f of fields) {
      if (f.field === 1 && f.wire === WIRE_VARINT) irVersion = (await w.varint(f.payload, f.end)).value;
      else if (f.field === 7 && f.wire === WIRE_LEN) graphSpan = f;
      else if (f.field === 8 && f.wire === WIRE_LEN) {
        const o = decodeMessage(OperatorSetIdProtoType, await w.bytes({ start: f.payload, end: f.end }));
        if (!o.domain || o.domain === 'ai.onnx') opset = Number(o.version ?? 0);
      } else if (f.field === 14 && f.wire === WIRE_LEN) {
        const kv = decodeMessage(StringStringEntryProtoType, await w.bytes({ start: f.payload, end: f.end }));
        metadataKey.set(f.start, String(kv.key ?? ''));
      }
    }
    if (!graphSpan) return w.fail('ModelProto has no graph', 0);
    const graph = await scanGraph(w, graphSpan.payload, graphSpan.end);
    return { fields, graphSpan, graph, irVersion, opset, metadataKey };
  } finally {
    await w.close();
  }
}

async function scanNode(w: WireFile, s: Span, refs: Set<string> | undefined, depth: number): Promise<ScannedNode> {
  const node: ScannedNode = { span: s, name: '', opType: '', domain: '', inputs: [], outputs: [], attrs: [] };
  for (const f of await w.fields(s.payload, s.end, 'NodeProto')) {
    if (f.wire !== WIRE_LEN) continue;
    switch (f.field) {
      case 1: node.inputs.push(await w.string(f)); break;
      case 2: node.outputs.push(await w.string(f)); break;
      case 3: node.name = await w.string(f); break;
      case 4: node.opType = await w.string(f); break;
      case 7: node.domain = await w.string(f); break;
      case 5: {
        const a: ScannedAttr = { name: '', ints: [] };
        for (const af of await w.fields(f.payload, f.end, 'AttributeProto')) {
          if (af.field === 1 && af.wire === WIRE_LEN) a.name = await w.string(af);
          else if (af.field === 2 && af.wire === WIRE_I32) a.f = new DataView((await w.bytes({ start: af.payload, end: af.end })).buffer).getFloat32(0, true);
          else if (af.field === 3 && af.wire === WIRE_VARINT) a.i = (await w.varint(af.payload, af.end)).value;
          else if (af.field === 8 && af.wire === WIRE_VARINT) a.ints.push((await w.varint(af.payload, af.end)).value);
          else if (af.field === 8 && af.wire === WIRE_LEN) {
            for (let pos = af.payload; pos < af.end;) { const r = await w.varint(pos, af.end); a.ints.push(r.value); pos = r.next; }
          }
          else if ((af.field === 6 || af.field === 11) && af.wire === WIRE_LEN) {
            if (depth > 32) w.fail('subgraphs nested more than 32 deep', af.start);
            await collectSubgraphRefs(w, af.payload, af.end, refs ?? new Set(), depth + 1);
          }
        }
        node.attrs.push(a);
        break;
      }
    }
  }
  return node;
}

async function collectSubgraphRefs(w: WireFile, start: number, end: number, refs: Set<string>, depth: number): Promise<void> {
  for (const f of await w.fields(start, end, 'GraphProto')) {
    if (f.field === 1 && f.wire === WIRE_LEN) {
      const n = await scanNode(w, f, refs, depth);
      for (const i of n.inputs) refs.add(i);
    }
  }
}

async function scanGraph(w: WireFile, start: number, end: number): Promise<GraphScan> {
  const g: GraphScan = {
    fields: await w.fields(start, end, 'GraphProto'), nodes: [], nodeBySpan: new Map(), initializers: [], initBySpan: new Map(),
    valueInfoName: new Map(), outputs: new Set(), subgraphRefs: new Set(),
  };
  for (const f of g.fields) {
    if (f.wire !== WIRE_LEN) continue;
    if (f.field === 1) {
      g.nodeBySpan.set(f.start, g.nodes.length);
      g.nodes.push(await scanNode(w, f, g.subgraphRefs, 0));
    } else if (f.field === 5) {
      const t: ScannedTensor = { span: f, name: '', headerSpans: [], typedOrOther: false, external: false };
      for (const tf of await w.fields(f.payload, f.end, 'TensorProto')) {
        if (!DATA_FIELDS.has(tf.field)) t.headerSpans.push(tf);
        if (tf.field === 8 && tf.wire === WIRE_LEN) t.name = await w.string(tf);
        if ([3, 4, 5, 6, 7, 10, 11].includes(tf.field)) t.typedOrOther = true;
        if (tf.field === 14 && tf.wire === WIRE_VARINT) t.external = (await w.varint(tf.payload, tf.end)).value === OnnxDataLocation.EXTERNAL;
      }
      g.initBySpan.set(f.start, g.initializers.length);
      g.initializers.push(t);
    } else if (f.field === 11 || f.field === 12 || f.field === 13) {
      for (const vf of await w.fields(f.payload, f.end, 'ValueInfoProto')) {
        if (vf.field === 1 && vf.wire === WIRE_LEN) {
          const name = await w.string(vf);
          g.valueInfoName.set(f.start, name);
          if (f.field === 12) g.outputs.add(name);
        }
      }
    }
  }
  // Keep the header bytes of every initializer in memory (names, dims: small) for rebuilding.
  for (const t of g.initializers) headerCache.set(t, concat(await Promise.all(t.headerSpans.map((s) => w.bytes(s)))));
  return g;
}

const headerCache = new WeakMap<ScannedTensor, Uint8Array>();

// ---------------------------------------------------------------------------------------------
// Planning: which nodes change, which initializers come and go.

/** Output bytes: in memory, copied from a file range, produced when their turn comes, or zero padding. */
type Piece =
  | { kind: 'bytes'; data: Uint8Array }
  | { kind: 'copy'; path: string; offset: number; length: number; what: string }
  | { kind: 'lazy'; length: number; what: string; produce: () => Uint8Array | Promise<Uint8Array> }
  | { kind: 'pad'; length: number };

const pieceLength = (p: Piece): number => (p.kind === 'bytes' ? p.data.byteLength : p.length);

/** A tensor in the output whose data is planned: header fields + data. */
interface OutTensor {
  name: string;
  header: Uint8Array;
  data: Piece;
  dataLength: number;
}

interface Plan {
  /** main-graph node index -> the nodes replacing it. */
  nodeRewrites: Map<number, INodeProto[]>;
  removedInitializers: Set<string>;
  /** Existing initializers whose data changes (dense replacement). */
  replacedData: Map<string, OutTensor>;
  /** New initializers (factors, shape constants). */
  newInitializers: OutTensor[];
  /** Graph inputs to add (IR < 4 lists initializers among the inputs). */
  newInputs: Uint8Array[];
  metadata: Record<string, string>;
  reports: OnnxReplacementReport[];
  nodeCountAfter: number;
  parameters: { before: number; after: number };
}

const FLOAT_TYPES: Record<string, number> = { F32: OnnxDataType.FLOAT, F16: OnnxDataType.FLOAT16, BF16: OnnxDataType.BFLOAT16, F64: OnnxDataType.DOUBLE };

/** Little-endian bytes of float values in the given dtype (F32, F16, BF16 round to nearest even; F64). */
function encodeFloats(values: Float32Array | number[], dtype: string): Uint8Array {
  const v = values instanceof Float32Array ? values : Float32Array.from(values);
  if (dtype === 'F16' || dtype === 'BF16') return encodeHalfChunk(v, 0, v.length, dtype);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN_HOST) return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
    const out = new Uint8Array(v.length * 4);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < v.length; i++) dv.setFloat32(i * 4, v[i], true);
    return out;
  }
  const out = new Uint8Array(v.length * 8);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < v.length; i++) dv.setFloat64(i * 8, v[i], true);
  return out;
}

function int64Bytes(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const dv = new DataView(out.buffer);
  values.forEach((x, i) => dv.setBigInt64(i * 8, BigInt(x), true));
  return out;
}

function newTensor(name: string, dims: number[], dataType: number, byteLength: number, produce: () => Uint8Array, what: string): OutTensor {
  return {
    name, header: encodeMessage(TensorProtoType, { name, dims, data_type: dataType } satisfies ITensorProto),
    data: { kind: 'lazy', length: byteLength, what, produce }, dataLength: byteLength,
  };
}

function attrInt(name: string, i: number): IAttributeProto { return { name, type: 2, i }; }
function attrInts(name: string, ints: number[]): IAttributeProto { return { name, type: 7, ints }; }

function planRewrite(ckpt: Checkpoint, scan: ModelScan, opts: OnnxWriteOptions): Plan {
  const g = scan.graph;
  const file = ckpt.path;
  const replacements = opts.replacements instanceof Map ? opts.replacements : new Map(Object.entries(opts.replacements));
  const initByName = new Map(g.initializers.map((t) => [t.name, t]));

  // Every name in use, so generated node and value names are unique.
  const used = new Set<string>();
  for (const n of g.nodes) { used.add(n.name); n.inputs.forEach((x) => used.add(x)); n.outputs.forEach((x) => used.add(x)); }
  for (const t of g.initializers) used.add(t.name);
  for (const v of g.valueInfoName.values()) used.add(v);
  for (const r of g.subgraphRefs) used.add(r);
  const fresh = (base: string): string => {
    let name = base;
    for (let k = 2; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    return name;
  };

  const plan: Plan = {
    nodeRewrites: new Map(), removedInitializers: new Set(), replacedData: new Map(), newInitializers: [], newInputs: [],
    metadata: { ...(opts.metadata ?? {}) }, reports: [], nodeCountAfter: g.nodes.length, parameters: { before: 0, after: 0 },
  };
  for (const t of g.initializers) plan.parameters.before += ckpt.get(t.name)?.params ?? 0;
  const factorizations: Record<string, FactorizedTensor> = {};

  // Constants shared by all rewrites (shape vectors, perms as int64; alpha/beta scalars).
  const constCache = new Map<string, string>();
  const int64Const = (values: number[]): string => {
    const key = `i64:${values.join(',')}`;
    let name = constCache.get(key);
    if (!name) {
      name = fresh(`tensor_scalpel.const.i64.${values.map((v) => (v < 0 ? `m${-v}` : String(v))).join('_') || 'empty'}`);
      constCache.set(key, name);
      plan.newInitializers.push(newTensor(name, [values.length], OnnxDataType.INT64, values.length * 8, () => int64Bytes(values), name));
    }
    return name;
  };
  const scalarConst = (value: number, dtype: string): string => {
    const key = `${dtype}:${value}`;
    let name = constCache.get(key);
    if (!name) {
      name = fresh(`tensor_scalpel.const.${dtype.toLowerCase()}.${value}`);
      constCache.set(key, name);
      const bytes = encodeFloats([value], dtype);
      plan.newInitializers.push(newTensor(name, [], FLOAT_TYPES[dtype], bytes.byteLength, () => bytes, name));
    }
    return name;
  };

  // Consumers of every name in the main graph.
  const consumers = new Map<string, Array<{ node: number; index: number }>>();
  g.nodes.forEach((n, k) => n.inputs.forEach((x, index) => {
    if (!x) return;
    let list = consumers.get(x);
    if (!list) consumers.set(x, (list = []));
    list.push({ node: k, index });
  }));

  for (const [name, rep] of replacements) {
    const init = initByName.get(name);
    const entry = ckpt.get(name);
    if (!init || !entry) {
      throw new CheckpointError(file, `no initializer named ${JSON.stringify(name)} in the main graph (replacements apply to graph.initializer entries)`, { tensor: name });
    }
    const dtypeId = FLOAT_TYPES[entry.dtype];
    if (dtypeId === undefined) throw new CheckpointError(file, `cannot replace a ${entry.dtype} initializer: only F32, F16, BF16 and F64 weights can be rewritten`, { tensor: name, offset: init.span.start });
    const bytesPer = onnxElementType(dtypeId)!.bytes;

    if (rep.kind === 'dense') {
      if (!(rep.data instanceof Float32Array) || rep.data.length !== entry.params) {
        throw new CheckpointError(file, `dense replacement has ${rep.data?.length} values, the initializer [${entry.shape.join(', ')}] has ${formatBytes(entry.params)}`, { tensor: name });
      }
      const data = rep.data;
      plan.replacedData.set(name, { name, header: headerCache.get(init)!, data: { kind: 'lazy', length: entry.params * bytesPer, what: name, produce: () => encodeFloats(data, entry.dtype) }, dataLength: entry.params * bytesPer });
      plan.reports.push({ name, kind: 'dense', shape: entry.shape.slice(), dtype: entry.dtype, tensors: [name], consumers: [], keptOriginal: false, denseParams: entry.params, factorParams: entry.params, macsPerRow: entry.shape.length === 2 ? entry.params : 0 });
      continue;
    }

    if (entry.shape.length !== 2) throw new CheckpointError(file, `a ${rep.kind} factorization needs a 2-D initializer, this one is [${entry.shape.join(', ')}]`, { tensor: name });
    const [rows, cols] = entry.shape;
    const factorTensors: OutTensor[] = [];
    let factorParams = 0;
    let emitChain: (x: string, out: string, side: 'rows' | 'cols', label: string) => INodeProto[];
    let canLeftMultiply = false;
    let macsPerRow = 0;
    let leftChain: (x: string, out: string, label: string) => INodeProto[] = () => [];

    if (rep.kind === 'lowrank') {
      if (!(rep.a instanceof Float32Array) || !(rep.b instanceof Float32Array) || rep.a.length === 0 || rep.a.length % rows !== 0) {
        throw new CheckpointError(file, `low-rank factor a must be a Float32Array of rows x k = ${rows} x k values, got ${rep.a?.length}`, { tensor: name });
      }
      const k = rep.a.length / rows;
      if (rep.b.length !== k * cols) throw new CheckpointError(file, `low-rank factor b must hold k x cols = ${k} x ${cols} = ${k * cols} values, got ${rep.b.length}`, { tensor: name });
      const names = lowRankTensorNames(name);
      if (used.has(names.a) || used.has(names.b)) throw new CheckpointError(file, `the model already has a tensor named ${names.a} or ${names.b}`, { tensor: name });
      used.add(names.a); used.add(names.b);
      const a = rep.a, b = rep.b;
      factorTensors.push(newTensor(names.a, [rows, k], dtypeId, rows * k * bytesPer, () => encodeFloats(a, entry.dtype), names.a));
      factorTensors.push(newTensor(names.b, [k, cols], dtypeId, k * cols * bytesPer, () => encodeFloats(b, entry.dtype), names.b));
      factorParams = k * (rows + cols);
      macsPerRow = k * (rows + cols);
      factorizations[name] = lowRankFactorization(name, rows, cols, k, entry.dtype);
      let aT: string | undefined, bT: string | undefined;
      emitChain = (x, out, side, label) => {
        const t = fresh(`${label}/lowrank_output_0`);
        if (side === 'rows') {
          // x @ W = (x @ a) @ b
          return [
            { name: fresh(`${label}/lowrank/MatMul_a`), op_type: 'MatMul', input: [x, names.a], output: [t] },
            { name: fresh(`${label}/lowrank/MatMul_b`), op_type: 'MatMul', input: [t, names.b], output: [out] },
          ];
        }
        // x @ W^T = (x @ b^T) @ a^T; the transposes of the factors are constant (folded at load).
        const pre: INodeProto[] = [];
        if (!bT) { bT = fresh(`${names.b}.T`); pre.push({ name: fresh(`${names.b}/Transpose`), op_type: 'Transpose', input: [names.b], output: [bT], attribute: [attrInts('perm', [1, 0])] }); }
        if (!aT) { aT = fresh(`${names.a}.T`); pre.push({ name: fresh(`${names.a}/Transpose`), op_type: 'Transpose', input: [names.a], output: [aT], attribute: [attrInts('perm', [1, 0])] }); }
        return [
          ...pre,
          { name: fresh(`${label}/lowrank/MatMul_bT`), op_type: 'MatMul', input: [x, bT], output: [t] },
          { name: fresh(`${label}/lowrank/MatMul_aT`), op_type: 'MatMul', input: [t, aT], output: [out] },
        ];
      };
      canLeftMultiply = true;
      leftChain = (x, out, label) => {
        // W @ x = a @ (b @ x)
        const t = fresh(`${label}/lowrank_output_0`);
        return [
          { name: fresh(`${label}/lowrank/MatMul_b`), op_type: 'MatMul', input: [names.b, x], output: [t] },
          { name: fresh(`${label}/lowrank/MatMul_a`), op_type: 'MatMul', input: [names.a, t], output: [out] },
        ];
      };
    } else if (rep.kind === 'mpo') {
      const mpo = validateMpo(file, name, rows, cols, rep);
      if (scan.opset < 11) throw new CheckpointError(file, `an MPO rewrite needs opset >= 11 (Pad/Slice with tensor inputs); the model imports opset ${scan.opset}`, { tensor: name });
      const coreNames = rep.cores.map((_, k) => mpoCoreName(name, k + 1));
      for (const c of coreNames) { if (used.has(c)) throw new CheckpointError(file, `the model already has a tensor named ${c}`, { tensor: name }); used.add(c); }
      rep.cores.forEach((core, k) => {
        const shape = rep.coreShapes[k];
        factorTensors.push(newTensor(coreNames[k], [...shape], dtypeId, core.length * bytesPer, () => encodeFloats(core, entry.dtype), coreNames[k]));
        factorParams += core.length;
      });
      factorizations[name] = mpoFactorization(name, rows, cols, rep.outFactors, rep.inFactors, rep.coreShapes.slice(0, -1).map((s) => s[3]), entry.dtype);
      const coreMatrix = coreMatrixFactory(coreNames, rep.coreShapes, fresh, int64Const);
      const bonds = mpo.chi.slice(1, -1);
      emitChain = (x, out, side, label) => {
        const macs = (o: MpoContractionOrder) => mpoContractionMacs(mpo.o, mpo.i, bonds, side, o);
        const order: MpoContractionOrder = rep.order && rep.order !== 'auto' ? rep.order : macs('right-to-left') < macs('left-to-right') ? 'right-to-left' : 'left-to-right';
        macsPerRow = Math.max(macsPerRow, macs(order));
        return mpoChain(x, out, side, order, mpo, rows, cols, coreMatrix, label, fresh, int64Const);
      };
    } else {
      throw new CheckpointError(file, `unknown replacement kind ${JSON.stringify((rep as { kind: unknown }).kind)} (expected dense, lowrank or mpo)`, { tensor: name });
    }

    // Rewrite each consumer.
    const report: OnnxReplacementReport = {
      name, kind: rep.kind, shape: [rows, cols], dtype: entry.dtype, tensors: factorTensors.map((t) => t.name), consumers: [],
      keptOriginal: false, denseParams: rows * cols, factorParams, macsPerRow: 0,
    };
    for (const c of consumers.get(name) ?? []) {
      const node = g.nodes[c.node];
      const label = node.name || node.outputs[0] || `${node.opType}_${c.node}`;
      const rec: OnnxConsumerReport = { node: label, opType: node.opType, inputIndex: c.index, rewritten: false };
      report.consumers.push(rec);
      if (plan.nodeRewrites.has(c.node)) { rec.reason = 'the node consumes another replaced initializer that was rewritten first'; continue; }
      if (node.domain !== '' && node.domain !== 'ai.onnx') { rec.reason = `custom domain ${node.domain}`; continue; }
      const [x0, x1] = node.inputs;
      if (node.opType === 'MatMul' && c.index === 1 && x0 !== name) {
        plan.nodeRewrites.set(c.node, emitChain(x0, node.outputs[0], 'rows', label));
        rec.rewritten = true;
      } else if (node.opType === 'MatMul' && c.index === 0 && x1 !== name && canLeftMultiply) {
        plan.nodeRewrites.set(c.node, leftChain(x1, node.outputs[0], label));
        rec.rewritten = true;
      } else if (node.opType === 'Transpose' && c.index === 0 && isMatrixTranspose(node)) {
        // Transpose(W) -> T, then MatMul(x, T): x @ W^T, contracted against W's columns (Llama-style
        // exports, e.g. stories260K.onnx). Folded only when every use of T is such a MatMul.
        const tOut = node.outputs[0];
        const uses = consumers.get(tOut) ?? [];
        const foldable = uses.length > 0 && !g.outputs.has(tOut) && !g.subgraphRefs.has(tOut) && uses.every((u) => {
          const m = g.nodes[u.node];
          return m.opType === 'MatMul' && u.index === 1 && m.inputs[0] !== tOut && !plan.nodeRewrites.has(u.node) && (m.domain === '' || m.domain === 'ai.onnx');
        });
        if (!foldable) {
          rec.reason = 'the Transpose output is used by something other than MatMul(x, W^T)';
        } else {
          plan.nodeRewrites.set(c.node, []);
          for (const u of uses) {
            const m = g.nodes[u.node];
            plan.nodeRewrites.set(u.node, emitChain(m.inputs[0], m.outputs[0], 'cols', m.name || m.outputs[0] || `MatMul_${u.node}`));
          }
          rec.rewritten = true;
          rec.reason = `Transpose -> ${uses.length} MatMul(x, W^T) folded: the Transpose is removed, the MatMuls use the factors`;
        }
      } else if (node.opType === 'Gemm' && c.index === 1 && x0 !== name && node.inputs[2] !== name) {
        const at = (n: string) => node.attrs.find((a) => a.name === n);
        const transA = at('transA')?.i ?? 0, transB = at('transB')?.i ?? 0;
        const alpha = at('alpha')?.f ?? 1, beta = at('beta')?.f ?? 1;
        const nodes: INodeProto[] = [];
        let a = x0;
        if (transA) {
          a = fresh(`${label}/A_transposed`);
          nodes.push({ name: fresh(`${label}/Transpose_A`), op_type: 'Transpose', input: [x0], output: [a], attribute: [attrInts('perm', [1, 0])] });
        }
        const C = node.inputs[2];
        const hasC = C !== undefined && C !== '' && beta !== 0;
        const y = node.outputs[0];
        const z = alpha === 1 && !hasC ? y : fresh(`${label}/product_output_0`);
        nodes.push(...emitChain(a, z, transB ? 'cols' : 'rows', label));
        // Y = alpha z + beta C (Gemm's definition), as separate element-wise nodes.
        let scaled = z;
        if (alpha !== 1) {
          scaled = hasC ? fresh(`${label}/alpha_output_0`) : y;
          nodes.push({ name: fresh(`${label}/Mul_alpha`), op_type: 'Mul', input: [z, scalarConst(alpha, entry.dtype)], output: [scaled] });
        }
        if (hasC) {
          let c2 = C;
          if (beta !== 1) {
            c2 = fresh(`${label}/beta_output_0`);
            nodes.push({ name: fresh(`${label}/Mul_beta`), op_type: 'Mul', input: [C, scalarConst(beta, entry.dtype)], output: [c2] });
          }
          nodes.push({ name: fresh(`${label}/Add_C`), op_type: 'Add', input: [scaled, c2], output: [y] });
        }
        plan.nodeRewrites.set(c.node, nodes);
        rec.rewritten = true;
      } else {
        rec.reason = node.opType === 'MatMul' || node.opType === 'Gemm'
          ? `${node.opType} input ${c.index} is not a position the ${rep.kind} rewrite handles`
          : `${node.opType} is not MatMul or Gemm`;
      }
    }
    const needOriginal = report.consumers.some((r) => !r.rewritten) || g.outputs.has(name) || g.subgraphRefs.has(name);
    report.keptOriginal = needOriginal;
    report.macsPerRow = macsPerRow;
    if (!report.consumers.some((r) => r.rewritten)) {
      // Nothing computes with the factors: writing them would only add unused initializers.
      report.tensors = [name];
      report.factorParams = 0;
      delete factorizations[name];
    } else {
      plan.newInitializers.unshift(...factorTensors);
    }
    if (!needOriginal) plan.removedInitializers.add(name);
    plan.reports.push(report);
  }

  for (const nodes of plan.nodeRewrites.values()) plan.nodeCountAfter += nodes.length - 1;
  for (const t of plan.newInitializers) plan.parameters.after += paramsOfHeader(t.header);
  plan.parameters.after += plan.parameters.before;
  for (const r of plan.removedInitializers) plan.parameters.after -= ckpt.get(r)!.params;

  if (Object.keys(factorizations).length > 0 && plan.metadata[FACTORIZATION_METADATA_KEY] === undefined) {
    plan.metadata[FACTORIZATION_METADATA_KEY] = factorizationMetadataValue(factorizations);
  }
  // IR < 4: every initializer must also be a graph input.
  if (scan.irVersion < 4) {
    for (const t of plan.newInitializers) {
      const h = decodeMessage(TensorProtoType, t.header);
      plan.newInputs.push(encodeMessage(ValueInfoProtoType, { name: t.name, type: { tensor_type: { elem_type: Number(h.data_type), shape: { dim: ((h.dims as number[] | undefined) ?? []).map((d) => ({ dim_value: d })) } } } }));
    }
  }
  return plan;
}

/** A Transpose that swaps the two axes of a matrix: perm [1, 0], or no perm (the default reverses the axes). */
function isMatrixTranspose(node: ScannedNode): boolean {
  const perm = node.attrs.find((a) => a.name === 'perm');
  return !perm || (perm.ints.length === 2 && perm.ints[0] === 1 && perm.ints[1] === 0);
}

function paramsOfHeader(header: Uint8Array): number {
  const h = decodeMessage(TensorProtoType, header);
  return ((h.dims as number[] | undefined) ?? []).reduce((a, b) => a * Number(b), 1);
}

interface MpoPlan { N: number; o: number[]; i: number[]; chi: number[] }

function validateMpo(file: string, name: string, rows: number, cols: number, rep: MpoReplacement): MpoPlan {
  const bad = (msg: string): never => { throw new CheckpointError(file, `MPO replacement: ${msg}`, { tensor: name }); };
  const N = rep.cores.length;
  if (N === 0) bad('no cores');
  if (rep.coreShapes.length !== N || rep.outFactors.length !== N || rep.inFactors.length !== N) {
    bad(`${N} cores, ${rep.coreShapes.length} core shapes, ${rep.outFactors.length} out factors and ${rep.inFactors.length} in factors must all be equal`);
  }
  const chi = [1];
  rep.coreShapes.forEach((s, k) => {
    if (s.length !== 4 || s.some((d) => !Number.isSafeInteger(d) || d < 1)) bad(`core ${k + 1} shape [${s}] must be 4 positive integers (chi_{k-1}, o_k, i_k, chi_k)`);
    if (s[0] !== chi[k]) bad(`core ${k + 1} has left bond ${s[0]}, expected ${chi[k]} (the previous core's right bond${k === 0 ? '; chi_0 = 1' : ''})`);
    if (s[1] !== rep.outFactors[k] || s[2] !== rep.inFactors[k]) bad(`core ${k + 1} shape [${s}] does not match o_${k + 1} = ${rep.outFactors[k]}, i_${k + 1} = ${rep.inFactors[k]}`);
    const n = s[0] * s[1] * s[2] * s[3];
    if (!(rep.cores[k] instanceof Float32Array) || rep.cores[k].length !== n) bad(`core ${k + 1} has ${rep.cores[k]?.length} values, shape [${s}] needs ${n}`);
    chi.push(s[3]);
  });
  if (chi[N] !== 1) bad(`the last core's right bond is ${chi[N]}, expected 1`);
  const po = rep.outFactors.reduce((a, b) => a * b, 1), pi = rep.inFactors.reduce((a, b) => a * b, 1);
  if (po < rows || pi < cols) bad(`factors give [${po}, ${pi}], smaller than the stored matrix [${rows}, ${cols}] (outFactors split its rows, inFactors its columns)`);
  return { N, o: rep.outFactors.slice(), i: rep.inFactors.slice(), chi };
}

export type MpoContractionOrder = 'left-to-right' | 'right-to-left';

/**
 * Multiply-accumulates per row of x for contracting x against the MPO site by site (0-based sites,
 * p = the contracted side's factors, q = the other side's, chi_0 = chi_N = 1):
 *   left-to-right: sum_k Q_{<k} P_{>k} (chi_k p_k) (q_k chi_{k+1})
 *   right-to-left: sum_k P_{<k} Q_{>k} (p_k chi_{k+1}) (chi_k q_k)
 * (each step is one batched MatMul; Q_{<k} = q_0 ... q_{k-1}, P_{>k} = p_{k+1} ... p_{N-1}). Unlike the
 * parameter count sum_k chi_k o_k i_k chi_{k+1}, this grows with the products of the factors on either
 * side, so an MPO with few parameters can still cost more than the dense x @ W (rows x cols MACs).
 */
export function mpoContractionMacs(outFactors: number[], inFactors: number[], bondDims: number[], side: 'rows' | 'cols', order: MpoContractionOrder): number {
  const p = side === 'rows' ? outFactors : inFactors;
  const q = side === 'rows' ? inFactors : outFactors;
  const chi = [1, ...bondDims, 1];
  const prod = (a: number[]) => a.reduce((x, y) => x * y, 1);
  let macs = 0;
  for (let k = 0; k < p.length; k++) {
    const batch = order === 'left-to-right' ? prod(q.slice(0, k)) * prod(p.slice(k + 1)) : prod(p.slice(0, k)) * prod(q.slice(k + 1));
    macs += batch * chi[k] * p[k] * q[k] * chi[k + 1];
  }
  return macs;
}

/**
 * Core k (stored G_k (chi_k, o_k, i_k, chi_{k+1})) as a matrix for one contraction step: the axes
 * permuted by `perm` and grouped 2 + 2, i.e. Reshape(Transpose(G_k, perm), [d0 d1, d2 d3]). The
 * inputs are initializers, so runtimes fold these nodes at load; each distinct (core, perm) is
 * made once per weight and shared by all its consumers.
 */
type CoreMatrix = (k: number, perm: [number, number, number, number]) => { name: string; nodes: INodeProto[] };

function coreMatrixFactory(coreNames: string[], shapes: Array<[number, number, number, number]>, fresh: (b: string) => string, int64Const: (v: number[]) => string): CoreMatrix {
  const made = new Map<string, string>();
  return (k, perm) => {
    const key = `${k}:${perm.join('')}`;
    const existing = made.get(key);
    if (existing) return { name: existing, nodes: [] };
    const c = coreNames[k];
    const identity = perm.every((a, j) => a === j);
    const d = perm.map((a) => shapes[k][a]);
    const nodes: INodeProto[] = [];
    let src = c;
    if (!identity) {
      src = fresh(`${c}.perm_${perm.join('')}`);
      nodes.push({ name: fresh(`${c}/Transpose`), op_type: 'Transpose', input: [c], output: [src], attribute: [attrInts('perm', perm)] });
    }
    const m = fresh(`${c}.matrix_${perm.join('')}`);
    nodes.push({ name: fresh(`${c}/Reshape`), op_type: 'Reshape', input: [src, int64Const([d[0] * d[1], d[2] * d[3]])], output: [m] });
    made.set(key, m);
    return { name: m, nodes };
  };
}

/**
 * y = x @ W_mpo (side 'rows') or x @ W_mpo^T (side 'cols') for x of any rank >= 1 whose last axis has
 * the contracted size, with MatMul and free Reshapes only (no Transpose of activations).
 * p = the contracted side's factors (o for 'rows', i for 'cols'), q = the other side's, sites
 * k = 0..N-1, chi_0 = chi_N = 1, B = x's leading axes flattened, x as [B, R] zero-padded to prod p.
 * left-to-right keeps the state S_k = [B Q_{<k}, chi_k p_k, P_{>k}] (row-major, so the pair to sum
 * over, (chi_k, p_k), is one axis) and left-multiplies by the constant
 *   L_k = G_k as [(q_k chi_{k+1}), (chi_k p_k)]:  L_k @ S_k = [B Q_{<k}, q_k chi_{k+1}, P_{>k}],
 * which read row-major is already S_{k+1} = [B Q_{<k+1}, chi_{k+1} p_{k+1}, P_{>k+1}].
 * right-to-left keeps S_k = [B P_{<k}, p_k chi_{k+1}, Q_{>k}] and left-multiplies by
 *   L_k = G_k as [(chi_k q_k), (p_k chi_{k+1})]:  -> [B P_{<k}, chi_k q_k, Q_{>k}] = S_{k-1}.
 * A step whose trailing axis has length 1 (the last site left-to-right, the first right-to-left) is
 * done as S [X, K] @ L^T instead: one flat GEMM instead of X small ones. The end state is [B, Q]
 * (q_0 most significant), cropped to the output size and reshaped to x's leading axes + [size].
 * Each step sums one site's (bond, factor) pair of the file comment's MPO formula, so the chain
 * equals x @ W_mpo exactly (up to float rounding); the cost of either order is mpoContractionMacs.
 */
function mpoChain(
  x: string, out: string, side: 'rows' | 'cols', order: MpoContractionOrder, mpo: MpoPlan, rows: number, cols: number, coreMatrix: CoreMatrix, label: string,
  fresh: (b: string) => string, int64Const: (v: number[]) => string,
): INodeProto[] {
  const p = side === 'rows' ? mpo.o : mpo.i;
  const q = side === 'rows' ? mpo.i : mpo.o;
  const chi = mpo.chi;
  const inSize = side === 'rows' ? rows : cols;
  const outSize = side === 'rows' ? cols : rows;
  const prod = (a: number[]) => a.reduce((u, w) => u * w, 1);
  const P = prod(p), Q = prod(q);
  const N = mpo.N;
  const nodes: INodeProto[] = [];
  const v = (s: string) => fresh(`${label}/mpo/${s}`);
  const node = (op: string, inputs: string[], output: string, attribute?: IAttributeProto[]): string => {
    nodes.push({ name: fresh(`${label}/mpo/${op}`), op_type: op, input: inputs, output: [output], ...(attribute ? { attribute } : {}) });
    return output;
  };
  // Stored core axes: 0 = chi_k, 1 = o_k, 2 = i_k, 3 = chi_{k+1}. The p / q axis of a core:
  const pAx = side === 'rows' ? 1 : 2, qAx = side === 'rows' ? 2 : 1;
  const matrix = (k: number, perm: [number, number, number, number]) => {
    const m = coreMatrix(k, perm);
    nodes.push(...m.nodes);
    return m.name;
  };
  let cur = node('Reshape', [x, int64Const([-1, inSize])], v('x2d'));
  if (P > inSize) cur = node('Pad', [cur, int64Const([0, 0, 0, P - inSize])], v('x_padded'));
  const sites = order === 'left-to-right' ? [...Array(N).keys()] : [...Array(N).keys()].reverse();
  for (const k of sites) {
    // Rows of L_k (the new pair) and its columns (the pair summed over), as stored-core axes.
    const [newPair, sumPair]: [[number, number], [number, number]] = order === 'left-to-right' ? [[qAx, 3], [0, pAx]] : [[0, qAx], [pAx, 3]];
    const trailing = order === 'left-to-right' ? prod(p.slice(k + 1)) : prod(q.slice(k + 1));
    const sumSize = chi[sumPair[0] === 0 ? k : k + 1] * p[k];
    if (trailing === 1) {
      // S [X, K] @ (L_k)^T: the core as [(sum pair), (new pair)].
      cur = node('Reshape', [cur, int64Const([-1, sumSize])], v(`site${k + 1}_in`));
      cur = node('MatMul', [cur, matrix(k, [...sumPair, ...newPair])], v(`site${k + 1}_out`));
    } else {
      cur = node('Reshape', [cur, int64Const([-1, sumSize, trailing])], v(`site${k + 1}_in`));
      cur = node('MatMul', [matrix(k, [...newPair, ...sumPair]), cur], v(`site${k + 1}_out`));
    }
  }
  cur = node('Reshape', [cur, int64Const([-1, Q])], v('y2d'));
  if (Q > outSize) cur = node('Slice', [cur, int64Const([0]), int64Const([outSize]), int64Const([1])], v('y_cropped'));
  // Back to x's leading axes: shape(x)[:-1] ++ [outSize].
  const shape = node('Shape', [x], v('x_shape'));
  const lead = node('Slice', [shape, int64Const([0]), int64Const([-1]), int64Const([0])], v('x_lead'));
  const target = node('Concat', [lead, int64Const([outSize])], v('y_shape'), [attrInt('axis', 0)]);
  node('Reshape', [cur, target], out);
  return nodes;
}

// ---------------------------------------------------------------------------------------------
// Layout: the bytes of the model (and the data file), in order, with every length known up front.

interface Layout {
  external: boolean;
  modelPieces: Piece[];
  modelLength: number;
  dataPieces: Piece[];
  dataLength: number;
}

function layoutOutput(ckpt: Checkpoint, scan: ModelScan, plan: Plan, opts: OnnxWriteOptions, dataName: string): Layout {
  const mode = opts.externalData ?? 'auto';
  const build = (external: boolean): Layout => buildLayout(ckpt, scan, plan, opts, dataName, external);
  if (mode === true) return build(true);
  const inline = build(false);
  const limit = Math.min(opts.inlineLimitBytes ?? PROTOBUF_LIMIT, PROTOBUF_LIMIT);
  if (inline.modelLength <= limit) return inline;
  if (mode === false) {
    throw new CheckpointError(ckpt.path, `the output would be ${formatBytes(inline.modelLength)} bytes, beyond the ${formatBytes(limit)}-byte limit for one model file (protobuf's 2 GiB); write it with external data`);
  }
  return build(true);
}

function buildLayout(ckpt: Checkpoint, scan: ModelScan, plan: Plan, opts: OnnxWriteOptions, dataName: string, external: boolean): Layout {
  const g = scan.graph;
  const file = ckpt.path;
  const alignment = opts.externalAlignment ?? 4096;
  const threshold = opts.externalThreshold ?? 1024;
  if (!Number.isSafeInteger(alignment) || alignment < 1) throw new CheckpointError(file, `externalAlignment must be a positive integer, got ${alignment}`);
  const dataPieces: Piece[] = [];
  let dataLength = 0;

  /** The GraphProto field bytes of one tensor: header + raw_data, or header + external_data entries. */
  const tensorField = (header: Uint8Array, data: Piece, length: number, name: string): Piece[] => {
    if (external && length >= threshold) {
      const pad = (alignment - (dataLength % alignment)) % alignment;
      if (pad) { dataPieces.push({ kind: 'pad', length: pad }); dataLength += pad; }
      const offset = dataLength;
      dataPieces.push(data);
      dataLength += length;
      const ext = encodeMessage(TensorProtoType, {
        data_location: OnnxDataLocation.EXTERNAL,
        external_data: [{ key: 'location', value: dataName }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(length) }],
      } satisfies ITensorProto);
      const msg = concat([header, ext]);
      return [{ kind: 'bytes', data: concat([lenPrefix(5, msg.byteLength), msg]) }];
    }
    const rawPrefix = lenPrefix(9, length);
    const msgLen = header.byteLength + rawPrefix.byteLength + length;
    return [{ kind: 'bytes', data: concat([lenPrefix(5, msgLen), header, rawPrefix]) }, data];
  };
  const entryData = (e: TensorEntry): Piece => ({ kind: 'copy', path: e.file, offset: e.byteOffset, length: e.byteLength, what: `tensor ${e.name}` });
  const copySpan = (s: Span): Piece => ({ kind: 'copy', path: file, offset: s.start, length: s.end - s.start, what: 'ONNX graph field' });

  const graphPieces: Piece[] = [];
  const emitNew = () => {
    for (const t of plan.newInitializers) graphPieces.push(...tensorField(t.header, t.data, t.dataLength, t.name));
    for (const v of plan.newInputs) graphPieces.push({ kind: 'bytes', data: concat([lenPrefix(11, v.byteLength), v]) });
  };
  let newEmitted = false;
  const lastInit = g.fields.reduce((last, f, k) => (f.field === 5 && f.wire === WIRE_LEN ? k : last), -1);
  g.fields.forEach((f, k) => {
    if (f.wire === WIRE_LEN && f.field === 1) {
      const idx = g.nodeBySpan.get(f.start)!;
      const rw = plan.nodeRewrites.get(idx);
      if (!rw) { graphPieces.push(copySpan(f)); return; }
      for (const n of rw) {
        const b = encodeMessage(NodeProtoType, n);
        graphPieces.push({ kind: 'bytes', data: concat([lenPrefix(1, b.byteLength), b]) });
      }
    } else if (f.wire === WIRE_LEN && f.field === 5) {
      const t = g.initializers[g.initBySpan.get(f.start)!];
      if (!plan.removedInitializers.has(t.name)) {
        const replaced = plan.replacedData.get(t.name);
        const entry = ckpt.get(t.name);
        if (replaced) graphPieces.push(...tensorField(replaced.header, replaced.data, replaced.dataLength, t.name));
        else if (!entry || t.typedOrOther || (!t.external && !(external && entry.byteLength >= threshold))) graphPieces.push(copySpan(f));
        else graphPieces.push(...tensorField(headerCache.get(t)!, entryData(entry), entry.byteLength, t.name));
      }
      if (k === lastInit) { emitNew(); newEmitted = true; }
    } else if (f.wire === WIRE_LEN && (f.field === 11 || f.field === 13) && plan.removedInitializers.has(g.valueInfoName.get(f.start) ?? '\u0000')) {
      // The removed initializer's input (IR < 4) or value_info entry goes with it.
    } else {
      graphPieces.push(copySpan(f));
    }
  });
  if (!newEmitted) emitNew();
  const graphLength = graphPieces.reduce((s, p) => s + pieceLength(p), 0);

  const modelPieces: Piece[] = [];
  const metaKeys = new Set(Object.keys(plan.metadata));
  for (const f of scan.fields) {
    if (f.start === scan.graphSpan.start) {
      modelPieces.push({ kind: 'bytes', data: lenPrefix(7, graphLength) }, ...graphPieces);
    } else if (f.field === 14 && metaKeys.has(scan.metadataKey.get(f.start) ?? '\u0000')) {
      // replaced by the caller's entry below
    } else {
      modelPieces.push(copySpan(f));
    }
  }
  for (const [key, value] of Object.entries(plan.metadata)) {
    const b = encodeMessage(StringStringEntryProtoType, { key, value });
    modelPieces.push({ kind: 'bytes', data: concat([lenPrefix(14, b.byteLength), b]) });
  }
  const modelLength = modelPieces.reduce((s, p) => s + pieceLength(p), 0);
  return { external, modelPieces, modelLength, dataPieces, dataLength };
}
