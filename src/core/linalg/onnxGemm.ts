/**
 * Large matrix products through onnxruntime-node.
 *
 * We build a one-node ONNX model (`Y = Gemm(A, B, transA, transB)`) in memory with a minimal
 * protobuf encoder (only the ModelProto fields such a model needs), so this module does not depend
 * on the project's full ONNX schema module. Inputs have symbolic dimensions, so one session serves
 * every shape: sessions are cached per (element type, transA, transB) — at most 8 — instead of per
 * shape, which would grow without bound over a model's many tensor shapes. ORT's CPU Gemm kernel
 * runs on MLAS (SGEMM/DGEMM), measured ~250 GFLOP/s in float32 on this machine's 2 cores.
 */
import * as ort from 'onnxruntime-node';
import { availableParallelism } from 'node:os';

// ---------------------------------------------------------------------------------------------
// Minimal protobuf writer (proto3 wire format: varint = 0, length-delimited = 2, fixed32 = 5).

class ProtoWriter {
  private chunks: number[] = [];

  private varint(v: number): void {
    // Non-negative integers below 2^53 only: all our tags, lengths and ints are.
    while (v >= 0x80) {
      this.chunks.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.chunks.push(v);
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  int(field: number, v: number): this {
    this.tag(field, 0);
    this.varint(v);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2);
    this.varint(data.length);
    for (const b of data) this.chunks.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, sub: ProtoWriter): this {
    return this.bytes(field, sub.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

/** ONNX TensorProto.DataType values we use. */
const ONNX_FLOAT = 1;
const ONNX_DOUBLE = 11;

/** ValueInfoProto{name, type: TypeProto{tensor_type: {elem_type, shape: [dims]}}}. */
function valueInfo(name: string, elemType: number, dims: string[]): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of dims) shape.message(1, new ProtoWriter().string(2, d)); // Dimension.dim_param
  const tensorType = new ProtoWriter().int(1, elemType).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, name).message(2, type);
}

/** AttributeProto{name, i, type = INT (2)}. */
function intAttribute(name: string, value: number): ProtoWriter {
  return new ProtoWriter().string(1, name).int(3, value).int(20, 2);
}

/**
 * Serialised ModelProto with one Gemm node: Y = op(A) op(B) (alpha = 1, no C).
 * Fields: ModelProto.ir_version = 1, producer_name = 2, graph = 7, opset_import = 8;
 * GraphProto.node = 1, name = 2, input = 11, output = 12; NodeProto.input = 1, output = 2,
 * name = 3, op_type = 4, attribute = 5.
 */
export function gemmModel(elemType: 'float32' | 'float64', transA: boolean, transB: boolean): Uint8Array {
  const et = elemType === 'float32' ? ONNX_FLOAT : ONNX_DOUBLE;
  const node = new ProtoWriter()
    .string(1, 'A').string(1, 'B').string(2, 'Y').string(3, 'gemm').string(4, 'Gemm')
    .message(5, intAttribute('transA', transA ? 1 : 0))
    .message(5, intAttribute('transB', transB ? 1 : 0));
  const aDims = transA ? ['K', 'M'] : ['M', 'K'];
  const bDims = transB ? ['N', 'K'] : ['K', 'N'];
  const graph = new ProtoWriter()
    .message(1, node)
    .string(2, 'tensor_scalpel_gemm')
    .message(11, valueInfo('A', et, aDims))
    .message(11, valueInfo('B', et, bDims))
    .message(12, valueInfo('Y', et, ['M', 'N']));
  return new ProtoWriter()
    .int(1, 8)
    .string(2, 'tensor-scalpel')
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, '').int(2, 13))
    .finish();
}

// ---------------------------------------------------------------------------------------------

export type FloatArray = Float32Array | Float64Array;

/** Products C = op(A) op(B) through cached onnxruntime sessions; row-major operands. */
/** m x n = op(A) op(B) with the inner dimension k; throws when op(A)'s columns are not op(B)'s rows. */
function productShape(aRows: number, aCols: number, bRows: number, bCols: number, transA: boolean, transB: boolean): { m: number; k: number; n: number } {
  const m = transA ? aCols : aRows;
  const k = transA ? aRows : aCols;
  const k2 = transB ? bCols : bRows;
  const n = transB ? bRows : bCols;
  if (k !== k2) throw new Error(`gemm: inner dimensions differ (${k} vs ${k2})`);
  return { m, k, n };
}

export class OrtGemm {
  private sessions = new Map<string, Promise<ort.InferenceSession>>();
  readonly threads: number;

  constructor(threads = availableParallelism()) {
    this.threads = Math.max(1, threads);
  }

  private session(elemType: 'float32' | 'float64', transA: boolean, transB: boolean): Promise<ort.InferenceSession> {
    const key = `${elemType}:${transA ? 1 : 0}${transB ? 1 : 0}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = ort.InferenceSession.create(gemmModel(elemType, transA, transB), {
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        // No busy-waiting between runs: the eigensolver alternates short GEMMs with single-threaded
        // WebAssembly work, during which spinning pool threads only take CPU from it (and from
        // everything else on a shared machine); measured no slower on 2 cores, faster under load.
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  /**
   * Starts creating the session for this (element type, transposes) now, so the first product
   * does not pay for it (~30 ms); errors surface on that first product instead.
   */
  prepare(elemType: 'float32' | 'float64', transA = false, transB = false): void {
    this.session(elemType, transA, transB).catch(() => { /* reported by the product that uses it */ });
  }

  /**
   * C (m x n) = op(A) op(B) where A is stored aRows x aCols and B bRows x bCols (row-major).
   * Float32Array operands give a float32 product, Float64Array ones a float64 product (DGEMM).
   */
  async gemm<T extends FloatArray>(
    a: T, aRows: number, aCols: number,
    b: T, bRows: number, bCols: number,
    transA = false, transB = false,
  ): Promise<{ data: T; rows: number; cols: number }> {
    const { m, k, n } = productShape(aRows, aCols, bRows, bCols, transA, transB);
    const is32 = a instanceof Float32Array;
    if (is32 !== (b instanceof Float32Array)) throw new Error('gemm: operands must have the same element type');
    if (m === 0 || n === 0) return { data: (is32 ? new Float32Array(0) : new Float64Array(0)) as T, rows: m, cols: n };
    if (k === 0) return { data: (is32 ? new Float32Array(m * n) : new Float64Array(m * n)) as T, rows: m, cols: n };
    const type = is32 ? 'float32' : 'float64';
    const sess = await this.session(type, transA, transB);
    const out = await sess.run({
      A: new ort.Tensor(type, a, [aRows, aCols]),
      B: new ort.Tensor(type, b, [bRows, bCols]),
    });
    const y = out.Y!;
    return { data: y.data as T, rows: m, cols: n };
  }

  /**
   * C (m x n) = op(A) op(B) written straight into `out` (m * n elements, e.g. a view on a
   * WebAssembly memory): onnxruntime fills a pre-allocated output tensor, so the product needs
   * neither a fresh result array nor a copy. Operands may be views (subarrays) too.
   */
  async gemmInto<T extends FloatArray>(
    a: T, aRows: number, aCols: number,
    b: T, bRows: number, bCols: number,
    transA: boolean, transB: boolean, out: T,
  ): Promise<void> {
    const { m, k, n } = productShape(aRows, aCols, bRows, bCols, transA, transB);
    const is32 = a instanceof Float32Array;
    if (is32 !== (b instanceof Float32Array) || is32 !== (out instanceof Float32Array)) throw new Error('gemm: operands must have the same element type');
    if (out.length !== m * n) throw new Error(`gemm: output has ${out.length} elements, expected ${m * n}`);
    if (m === 0 || n === 0) return;
    if (k === 0) { out.fill(0); return; }
    const type = is32 ? 'float32' : 'float64';
    const sess = await this.session(type, transA, transB);
    await sess.run(
      { A: new ort.Tensor(type, a, [aRows, aCols]), B: new ort.Tensor(type, b, [bRows, bCols]) },
      { Y: new ort.Tensor(type, out, [m, n]) },
    );
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) {
      try { await (await s).release(); } catch { /* already released */ }
    }
  }
}
